// The event-monitor stream: pretty-printed objects one after another, split at any byte.

#include "chv/events.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace vmr;
using namespace vmr::chv;

namespace {

const std::string kTwo =
    "{\n  \"timestamp\": {\n    \"secs\": 3,\n    \"nanos\": 500\n  },\n  \"source\": \"vm\",\n"
    "  \"event\": \"booted\",\n  \"properties\": null\n}\n"
    "{\n  \"timestamp\": {\n    \"secs\": 4,\n    \"nanos\": 0\n  },\n  \"source\": \"virtio-device\",\n"
    "  \"event\": \"activated\",\n  \"properties\": {\n    \"id\": \"_disk0 {\\\"}\"\n  }\n}\n";

std::vector<Event> drain(EventStream& s)
{
    std::vector<Event> out;
    for (;;) {
        auto ev = s.next();
        if (!ev) FAIL("next: " << ev.error().what());
        if (!*ev) return out;
        out.push_back(std::move(**ev));
    }
}

}  // namespace

TEST_CASE("multi-line objects, whole and byte by byte")
{
    for (size_t step : {kTwo.size(), size_t{1}, size_t{13}}) {
        EventStream s;
        std::vector<Event> events;
        for (size_t i = 0; i < kTwo.size(); i += step) {
            s.append(std::string_view(kTwo).substr(i, step));
            for (auto& e : drain(s)) events.push_back(std::move(e));
        }
        REQUIRE(events.size() == 2);
        CHECK(events[0].name() == "vm/booted");
        CHECK(events[0].secs == 3);
        CHECK(events[0].nanos == 500);
        CHECK(events[0].propertiesJson == "null");
        CHECK(events[1].name() == "virtio-device/activated");
        // Braces and quotes inside strings do not end the object.
        CHECK(events[1].propertiesJson == R"({"id":"_disk0 {\"}"})");
    }
}

TEST_CASE("objects without timestamp or properties, on one line")
{
    EventStream s;
    s.append(R"({"source":"vmm","event":"starting"}{"source":"guest","event":"panic","properties":null})");
    auto events = drain(s);
    REQUIRE(events.size() == 2);
    CHECK(events[0].name() == "vmm/starting");
    CHECK(events[1].name() == "guest/panic");
}

TEST_CASE("garbage fails the stream for good")
{
    EventStream s;
    s.append("  \nnot json");
    auto ev = s.next();
    REQUIRE_FALSE(ev);
    CHECK(ev.error().kind() == ErrorKind::ParseError);
    CHECK(ev.error().message().find("expected '{'") != std::string::npos);
    s.append(R"({"source":"vm","event":"booted"})");
    CHECK_FALSE(s.next());
}

TEST_CASE("malformed objects are named")
{
    auto failure = [](std::string text) {
        EventStream s;
        s.append(text);
        auto ev = s.next();
        if (ev) FAIL("should have failed: " << text);
        return ev.error().message();
    };
    CHECK(failure(R"({"event":"booted"})").find("\"source\"") != std::string::npos);
    CHECK(failure(R"({"source":"vm"})").find("\"event\"") != std::string::npos);
    CHECK(failure(R"({"source":"vm","event":"x","timestamp":{"secs":-1,"nanos":0}})").find("timestamp") !=
          std::string::npos);
    CHECK(failure(R"({"source":"vm","event":"x","properties":[1]})").find("properties") != std::string::npos);
    CHECK(failure(R"({"source":"vm",])").find("not a JSON object") != std::string::npos);
}

TEST_CASE("an object larger than the bound is TooLarge")
{
    EventStream s(128);
    s.append("{\"source\":\"" + std::string(200, 'a'));
    auto ev = s.next();
    REQUIRE_FALSE(ev);
    CHECK(ev.error().kind() == ErrorKind::TooLarge);
}
