// Replays the QMP fuzz corpus through the fuzz target as an ordinary test (STYLE.md, 12), and
// checks that the real QEMU lines in it decode as what their names say.

#include "qmp/message.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::string readFile(const std::filesystem::path& p)
{
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("the QMP fuzz corpus replays cleanly")
{
    std::filesystem::path dir = VMR_QMP_CORPUS;
    size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        std::string name = entry.path().filename().string();
        INFO(name);
        std::string data = readFile(entry.path());
        CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size()) == 0);
        ++count;

        // Single-message seeds decode as the kind their name starts with.
        auto kindOk = [&](auto tag) {
            using T = decltype(tag);
            vmr::qmp::LineSplitter lines;
            lines.append(data);
            auto line = lines.next();
            REQUIRE(line.ok());
            REQUIRE(*line);
            auto msg = vmr::qmp::parseMessage(**line);
            if (!msg) FAIL(msg.error().what());
            CHECK(std::holds_alternative<T>(*msg));
        };
        if (name.rfind("greeting_", 0) == 0) kindOk(vmr::qmp::Greeting{});
        if (name.rfind("return_", 0) == 0 || name.rfind("status_", 0) == 0) kindOk(vmr::qmp::Return{});
        if (name.rfind("error_", 0) == 0) kindOk(vmr::qmp::ErrorReply{});
        if (name.rfind("event_", 0) == 0) kindOk(vmr::qmp::Event{});
        if (name.rfind("malformed_", 0) == 0) {
            vmr::qmp::LineSplitter lines;
            lines.append(data + "\n");
            auto line = lines.next();
            REQUIRE(line.ok());
            REQUIRE(*line);
            CHECK_FALSE(vmr::qmp::parseMessage(**line).ok());
        }
    }
    CHECK(count >= 15);
}
