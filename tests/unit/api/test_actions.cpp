// The API's typed actions without a daemon: params parsed by their pure functions, handlers
// run on a real manager over a temp store (QEMU -machine none: no guest, the same process
// lifecycle), results written as the daemon would answer.

#include "api/action.h"
#include "api/vm.h"
#include "world.h"

#include <catch2/catch.hpp>
#include <simdjson.h>

using namespace vmr;
using vmr::test::finish;
using vmr::test::TempDir;

namespace {

rpc::Params params(const std::string& json)
{
    auto p = rpc::Params::parse(json);
    REQUIRE(p);
    return std::move(*p);
}

size_t occurrences(const std::string& text, const std::string& what)
{
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

struct World : vmr::test::World {
    api::CreateParams createParams(const std::string& extra)
    {
        auto p = api::parseCreate(params(R"({"image":")" + baseImage() + "\"" + extra + "}"));
        REQUIRE(p);
        return std::move(*p);
    }
};

}  // namespace

TEST_CASE("vm.create params: the spec's fields, decoded once", "[api]")
{
    auto ok = api::parseCreate(params(R"({"name":"web","image":"/i.qcow2","vcpus":2,"memory_mib":512})"));
    REQUIRE(ok);
    REQUIRE(ok->spec);
    CHECK(ok->spec->vcpus == 2);
    CHECK(ok->spec->memoryMib == 512);
    CHECK_FALSE(ok->start);

    auto typo = api::parseCreate(params(R"({"name":"web","image":"/i.qcow2","memroy_mib":512})"));
    REQUIRE_FALSE(typo);
    CHECK(typo.error().kind() == ErrorKind::InvalidParams);
    CHECK(typo.error().hint() == "Did you mean `memory_mib`?");

    auto range = api::parseCreate(params(R"({"name":"web","image":"/i.qcow2","vcpus":0})"));
    REQUIRE_FALSE(range);
    CHECK(range.error().message() == "Parameter `vcpus` must be a whole number from 1 to 256, not 0");

    auto bad = api::parseCreate(params(R"({"name":"../x","image":"/i.qcow2"})"));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind() == ErrorKind::InvalidName);

    // With a template the spec is decoded once the template is applied.
    auto templ = api::parseCreate(params(R"({"template":"small","start":true})"));
    REQUIRE(templ);
    CHECK_FALSE(templ->spec);
    CHECK(templ->start);
}

TEST_CASE("vm.stop and vm.provision params", "[api]")
{
    auto stop = api::parseStop(params(R"({"name":"a","timeout":5,"force":true})"));
    REQUIRE(stop);
    CHECK(stop->opts.force);
    CHECK(stop->opts.timeout == std::chrono::seconds(5));
    CHECK_FALSE(api::parseStop(params(R"({"name":"a","timeout":-1})")));

    auto prov = api::parseProvision(params(R"({"name":"a","steps":[{"type":"shell","inline":"true"}]})"));
    REQUIRE(prov);
    REQUIRE(prov->steps);
    CHECK(prov->steps->size() == 1);
    auto none = api::parseProvision(params(R"({"name":"a"})"));
    REQUIRE(none);
    CHECK_FALSE(none->steps);
    CHECK_FALSE(api::parseProvision(params(R"({"name":"a","steps":[{"type":"shell"}]})")));
}

TEST_CASE("vm.create with start: created and started in one call", "[api]")
{
    World w;
    api::CallContext ctx;
    auto rec = finish(*w.r, api::create(*w.services, ctx, w.createParams(R"(,"name":"one","start":true)")));
    REQUIRE(rec);
    CHECK(rec->runtime.state == model::VmState::Running);
    REQUIRE(rec->runtime.pid);
    // The creation itself is an event (-> prepared), then the start.
    REQUIRE(w.events.size() >= 2);
    CHECK(w.events.front().to == model::VmState::Prepared);

    std::string status = api::recordJson(*w.manager, *w.manager->find("one"));
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    REQUIRE(parser.parse(status).get(obj) == simdjson::SUCCESS);
    CHECK(std::string_view(obj["state"].get_string().value()) == "running");
    CHECK(occurrences(status, "\"seed\"") == 1);  // once, from the runtime

    std::string list = api::listJson(*w.manager);
    CHECK(list.find("\"name\":\"one\"") != std::string::npos);
    CHECK(list.find("\"memory_mib\":1024") != std::string::npos);

    auto stopped = finish(*w.r, w.manager->stop("one", vm::StopOptions{true, {}}));
    REQUIRE(stopped);
    CHECK(stopped->runtime.state == model::VmState::Stopped);
}

TEST_CASE("vm.create --template --start without a name: vmrd picks the name and starts it", "[api]")
{
    World w;
    test::writeFile(w.dir / "templates/small.toml", "image = \"" + w.baseImage() + "\"\nmemory = 128\n");
    api::CallContext ctx;
    auto p = api::parseCreate(params(R"({"template":"small","start":true})"));
    REQUIRE(p);
    auto rec = finish(*w.r, api::create(*w.services, ctx, std::move(*p)));
    REQUIRE(rec);
    CHECK(rec->name() == "small-1");
    CHECK(rec->spec.memoryMib == 128);
    CHECK(rec->runtime.state == model::VmState::Running);
}

TEST_CASE("vm.create refuses, and leaves nothing behind", "[api]")
{
    World w;
    api::CallContext ctx;
    auto missing = finish(
        *w.r, api::create(*w.services, ctx, w.createParams(R"(,"name":"m","kernel":"/nope/vmlinuz")")));
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind() == ErrorKind::NotFound);
    auto chv = finish(*w.r, api::create(*w.services, ctx, w.createParams(R"(,"name":"c","backend":"chv")")));
    REQUIRE_FALSE(chv);
    CHECK(chv.error().kind() == ErrorKind::Unsupported);
    CHECK(test::listDir(w.layout->vmsDir()).empty());
    CHECK(w.manager->list().empty());
}
