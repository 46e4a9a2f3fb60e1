#pragma once

// vmrd's wiring: settings, the state lock, the reactor, the control socket, the store,
// the method table and the signals. The VM layers hang off this in later work.

#include "api/action.h"
#include "base/fd.h"
#include "base/result.h"
#include "config/settings.h"
#include "console/registry.h"
#include "image/cache.h"
#include "reactor/reactor.h"
#include "rpc/server.h"
#include "store/store.h"
#include "vm/manager.h"
#include "vmrd/access.h"

#include <map>
#include <memory>
#include <optional>
#include <string>

namespace vmr::vmrd {

struct Options {
    std::optional<config::Mode> mode;  // --user / --system; default by uid
    std::optional<std::string> configPath;
    std::optional<std::string> socket;
    std::optional<std::string> stateDir;
    std::optional<std::string> runtimeDir;
    std::optional<reactor::Backend> reactor;
    int verbose = -1;  // -1: the config's log_level decides
};

class Daemon {
public:
    static Result<std::unique_ptr<Daemon>> create(Options options);
    ~Daemon();

    // Serve until SIGTERM/SIGINT (or stop()).
    Result<void> run();
    void stop();

    // Publish an event to subscribers: {"topic":..,"time":..,"vm":..,<fields>}.
    // `fieldsJson` is the inside of a JSON object ("\"k\":1,...") or empty.
    void publish(std::string_view topic, std::string_view vm, std::string_view fieldsJson);

private:
    explicit Daemon(Options options) : options_(std::move(options)) {}
    Result<void> init();
    Result<void> takeLock();
    Result<UniqueFd> openControlSocket();
    void applySettings();
    void registerMethods();
    // Keep the VM's console hub in step with its state (started, stopped, destroyed).
    void followConsole(const vm::StateEvent& e);
    void attachConsoles();  // after re-adoption: a hub for every VM that runs
    void reload();

    Options options_;
    config::Mode mode_ = config::Mode::User;
    config::Settings settings_;
    // Owned, in teardown order (last destroyed first): lock, reactor, then what runs on it.
    UniqueFd lockFd_;
    std::unique_ptr<reactor::Reactor> reactor_;
    std::unique_ptr<store::Layout> layout_;
    std::unique_ptr<store::Store> store_;
    std::unique_ptr<image::Cache> cache_;
    std::unique_ptr<vm::Manager> manager_;     // borrows the store and the cache; outlived by them
    std::unique_ptr<console::Registry> hubs_;  // one console hub per running VM
    std::unique_ptr<api::Services> services_;  // what the API's handlers borrow
    std::unique_ptr<rpc::Server> server_;      // its async calls borrow the services
    std::unique_ptr<reactor::SignalSet> signals_;
    bool ownsSocketFile_ = false;
    std::string readOnlySocket_;  // made by us (system mode); empty: none
    AccessGroups groups_;
    bool stopping_ = false;
};

}  // namespace vmr::vmrd
