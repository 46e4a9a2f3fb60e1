#pragma once

// What the API's handlers borrow, for tests without a daemon: a reactor, a store on a temp
// state folder, the image cache, a manager (QEMU -machine none: no guest, the same process
// lifecycle), the console hubs and the Services over them.

#include "api/action.h"
#include "catch.h"
#include "store/layout.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vmr::test {

struct World {
    TempDir dir;
    config::Settings settings;
    std::unique_ptr<reactor::Reactor> r = makeReactor();
    std::unique_ptr<store::Layout> layout;
    std::unique_ptr<store::Store> store;
    std::unique_ptr<image::Cache> cache;
    std::unique_ptr<vm::Manager> manager;
    std::unique_ptr<console::Registry> hubs;
    std::unique_ptr<api::Services> services;
    std::vector<vm::StateEvent> events;  // from the manager
    std::vector<std::string> published;  // "topic fields", through Services::publish
    std::string image;                   // a small qcow2 to base VMs on

    explicit World(const std::function<void(image::CacheConfig&)>& tweakCache = {})
    {
        settings.mode = config::Mode::User;
        settings.stateDir = dir / "state";
        settings.runtimeDir = dir / "run";
        settings.qemu.machine = "none";
        settings.qemu.accel = "tcg";
        auto first = static_cast<uint16_t>(30000 + ::getpid() % 1000 * 20);
        settings.network.sshPortRange = {first, static_cast<uint16_t>(first + 19)};
        layout = std::make_unique<store::Layout>(settings);
        REQUIRE(layout->ensureDirs());
        auto st = store::Store::open(*layout);
        REQUIRE(st);
        store = std::make_unique<store::Store>(std::move(*st));
        image::CacheConfig cc;
        cc.dir = layout->imagesDir();
        const char* fetch = std::getenv("VMR_FETCH");
        if (fetch != nullptr) cc.fetchProgram = fetch;
        if (tweakCache) tweakCache(cc);
        cache = std::make_unique<image::Cache>(*r, cc);
        REQUIRE(cache->open());
        manager = std::make_unique<vm::Manager>(*r, settings, *store, *cache,
                                                [this](const vm::StateEvent& e) { events.push_back(e); });
        hubs = std::make_unique<console::Registry>(*r, console::HubOptions{});
        std::filesystem::create_directories(dir / "templates");
        services = std::make_unique<api::Services>(
            api::Services{*manager, *cache, *hubs, dir / "templates", "user", settings.stateDir, "test",
                          [this](std::string_view topic, std::string_view, std::string_view fields) {
                              published.push_back(std::string(topic) + " " + std::string(fields));
                          }});
    }
    World(const World&) = delete;
    World& operator=(const World&) = delete;
    ~World()
    {
        // Nothing outlives the test: every QEMU started here is killed.
        for (const store::VmRecord* rec : manager->list())
            if (rec->runtime.pid) (void)::kill(*rec->runtime.pid, SIGKILL);
    }

    // A small qcow2 image made with qemu-img.
    const std::string& baseImage()
    {
        if (image.empty()) {
            image = dir / "base.qcow2";
            REQUIRE(std::system(("qemu-img create -q -f qcow2 " + image + " 16M").c_str()) == 0);
        }
        return image;
    }
};

}  // namespace vmr::test
