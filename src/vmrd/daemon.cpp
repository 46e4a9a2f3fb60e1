#include "vmrd/daemon.h"

#include "api/action.h"
#include "base/json.h"
#include "base/log.h"
#include "config/templates.h"
#include "vmrd/access.h"

#include "config.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace vmr::vmrd {

namespace {

constexpr int kSdListenFdsStart = 3;

spdlog::logger& logger()
{
    return log::get("vmrd");
}

std::string isoNow()
{
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    ::gmtime_r(&ts.tv_sec, &t);
    char buf[40];
    size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
    std::snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return buf;
}

// The systemd socket-activation protocol: LISTEN_PID names us, LISTEN_FDS counts the fds from 3.
std::optional<int> activatedSocket()
{
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    if (pid == nullptr || fds == nullptr) return std::nullopt;
    if (std::strtol(pid, nullptr, 10) != ::getpid() || std::strtol(fds, nullptr, 10) < 1) return std::nullopt;
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    return kSdListenFdsStart;
}

rpc::Limits rpcLimits(const config::Settings& s)
{
    rpc::Limits limits;
    limits.maxRequestBytes = s.limits.maxRequestBytes;
    limits.maxClientBacklog = s.limits.maxClientBacklog;
    limits.maxClients = s.limits.maxClients;
    return limits;
}

reactor::Task<void> adoptVms(vm::Manager& m, std::vector<store::VmRecord> records, std::function<void()> then)
{
    auto r = co_await m.adoptAll(std::move(records));
    if (!r) logger().error("Re-adopting VMs failed: {}", r.error().what());
    m.killOrphans();
    then();
}

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::create(Options options)
{
    std::unique_ptr<Daemon> d(new Daemon(std::move(options)));
    VMR_TRY(d->init());
    return d;
}

Daemon::~Daemon()
{
    signals_.reset();
    server_.reset();
    // Downloads in flight stop, and each vmr-fetch is reaped with its .part removed.
    if (cache_ && reactor_) {
        cache_->cancelAll();
        reactor_->runUntil([this] { return cache_->idle(); }, std::chrono::seconds(10));
    }
    if (ownsSocketFile_) ::unlink(settings_.socket.c_str());
    if (!readOnlySocket_.empty()) ::unlink(readOnlySocket_.c_str());
}

Result<void> Daemon::init()
{
    auto env = config::Env::fromProcess();
    mode_ = options_.mode.value_or(::geteuid() == 0 ? config::Mode::System : config::Mode::User);
    auto settings = config::loadSettings(mode_, options_.configPath, env);
    if (!settings) return std::move(settings).error();
    settings_ = std::move(*settings);
    if (options_.stateDir) settings_.stateDir = *options_.stateDir;
    if (options_.runtimeDir) {
        bool socketDefault = settings_.socket == settings_.runtimeDir + "/vmrd.sock";
        settings_.runtimeDir = *options_.runtimeDir;
        if (socketDefault) settings_.socket = settings_.runtimeDir + "/vmrd.sock";
    }
    if (options_.socket) settings_.socket = *options_.socket;
    applySettings();
    if (!settings_.configPath.empty()) logger().info("Configuration: {}", settings_.configPath);

    settings_.mode = mode_;
    layout_ = std::make_unique<store::Layout>(settings_);
    VMR_TRY(layout_->ensureDirs());
    VMR_TRY(takeLock());

    auto reactor = reactor::Reactor::create(options_.reactor);
    if (!reactor) return std::move(reactor).error();
    reactor_ = std::move(*reactor);
    // Signals first: once the socket answers, a SIGTERM must already mean an orderly stop.
    signals_ = std::make_unique<reactor::SignalSet>(
        *reactor_, std::initializer_list<int>{SIGTERM, SIGINT, SIGHUP}, [this](int signo) {
            if (signo == SIGHUP) {
                reload();
                return;
            }
            logger().info("{} received: shutting down", strsignal(signo));
            stop();
        });

    auto st = store::Store::open(*layout_);
    if (!st) return std::move(st).error();
    store_ = std::make_unique<store::Store>(std::move(*st));
    auto scan = store_->scan();
    if (!scan) return std::move(scan).error();
    for (const auto& p : scan->problems) {
        logger().warn("{}: {}{}", p.path, p.message, p.keptAs.empty() ? "" : "; kept as " + p.keptAs);
    }
    logger().info("State: {} ({} VM records)", settings_.stateDir, scan->records.size());
    console::HubOptions hubDefaults;
    hubDefaults.scrollbackBytes = settings_.console.scrollback;
    hubs_ = std::make_unique<console::Registry>(*reactor_, hubDefaults);
    image::CacheConfig cacheConfig;
    cacheConfig.dir = layout_->imagesDir();
    cacheConfig.fetchProgram =
        settings_.images.fetchProgram.empty() ? image::defaultFetchProgram() : settings_.images.fetchProgram;
    cacheConfig.caFile = settings_.images.caFile;
    cache_ = std::make_unique<image::Cache>(*reactor_, cacheConfig);
    auto cleaned = cache_->open();
    if (!cleaned) return std::move(cleaned).error();
    for (const auto& gone : *cleaned)
        logger().warn("Image cache: removed {} (an interrupted download)", gone);
    manager_ = std::make_unique<vm::Manager>(
        *reactor_, settings_, *store_, *cache_, [this](const vm::StateEvent& e) {
            publish("vm.state", e.vm,
                    "\"from\":" + json::quote(model::wordOf(e.from)) + ",\"to\":" +
                        json::quote(model::wordOf(e.to)) + ",\"reason\":" + json::quote(e.reason));
            followConsole(e);
        });
    // Re-adopt the VMs that kept running while vmrd was down; the loop runs it from the start.
    manager_->setBroken(scan->broken);
    for (const auto& b : scan->broken)
        logger().warn("VM {} is broken: {} (vmrctl destroy {} removes it)", b.name, b.reason, b.name);
    reactor::spawnDetached(adoptVms(*manager_, std::move(scan->records), [this] { attachConsoles(); }));

    VMR_TRY_ASSIGN(groups_, accessGroups(settings_));
    auto listening = openControlSocket();
    if (!listening) return std::move(listening).error();
    server_ = std::make_unique<rpc::Server>(*reactor_, std::move(*listening), rpcLimits(settings_));
    server_->setAuthorizer(makeAuthorizer(mode_, groups_));
    if (mode_ == config::Mode::System && groups_.readOnly) {
        std::string ro = config::readOnlySocketPath(settings_.socket);
        VMR_TRY_ASSIGN(UniqueFd roFd, listenAt(ro, 0660, groups_.readOnly));
        server_->addListener(std::move(roFd), rpc::Role::ReadOnly);
        readOnlySocket_ = ro;
        logger().info("Read-only socket {} (group {})", ro, groups_.readOnlyName);
    }
    registerMethods();

    return success();
}

void Daemon::applySettings()
{
    if (options_.verbose >= 0) {
        log::setVerbosity(options_.verbose);
        return;
    }
    const std::string& level = settings_.logLevel;
    log::setVerbosity(level == "trace" ? 2 : level == "debug" ? 1 : 0);
    auto lvl = spdlog::level::from_str(level);
    log::get("vmrd").set_level(lvl);
}

Result<void> Daemon::takeLock()
{
    std::string path = settings_.stateDir + "/vmrd.lock";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) return Error::fromErrno(errno, "Cannot open the lock file " + path);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err != EWOULDBLOCK) return Error::fromErrno(err, "Cannot lock " + path);
        char buf[32] = {};
        ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
        std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("?");
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
        return Error(ErrorKind::Busy, "Another vmrd (pid " + pid + ") already uses " + settings_.stateDir,
                     "Talk to it with vmrctl, or stop it before starting a new one");
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0) {
        return Error::fromErrno(errno, "Cannot write the lock file " + path);
    }
    lockFd_ = std::move(fd);
    return success();
}

Result<UniqueFd> Daemon::openControlSocket()
{
    if (auto fd = activatedSocket()) {
        ::fcntl(*fd, F_SETFD, FD_CLOEXEC);
        // A service manager may pass a blocking socket; the loop must never block in accept().
        ::fcntl(*fd, F_SETFL, ::fcntl(*fd, F_GETFL) | O_NONBLOCK);
        logger().info("Listening on the socket passed by the service manager (fd {})", *fd);
        return UniqueFd(*fd);
    }
    VMR_TRY_ASSIGN(UniqueFd fd, listenAt(settings_.socket, 0660, groups_.admin));
    ownsSocketFile_ = true;
    logger().info("Listening on {}", settings_.socket);
    return fd;
}

void Daemon::registerMethods()
{
    std::string configFile =
        options_.configPath.value_or(config::defaultConfigPath(mode_, config::Env::fromProcess()));
    services_ = std::make_unique<api::Services>(api::Services{
        *manager_,
        *cache_,
        *hubs_,
        config::templatesDir(configFile),
        mode_ == config::Mode::System ? "system" : "user",
        settings_.stateDir,
        std::string(reactor::backendName(reactor_->backend())),
        [this](std::string_view topic, std::string_view vm, std::string_view fields) {
            publish(topic, vm, fields);
        },
    });
    api::registerAll(*server_, *services_);
}

void Daemon::followConsole(const vm::StateEvent& e)
{
    using model::VmState;
    // From "starting" on, so that the boot output is in the scrollback (the hub retries until
    // the serial socket is there).
    if (e.to == VmState::Starting || e.to == VmState::Running) {
        if (hubs_->find(e.vm) != nullptr && e.to == VmState::Running) return;
        const store::VmRecord* rec = manager_->find(e.vm);
        if (rec == nullptr) return;
        vm::Manager::Paths paths = manager_->pathsOf(*rec);
        // QEMU writes console.log itself (chardev logfile=); the hub writes it for the others.
        std::string log =
            rec->spec.backend == model::Backend::Qemu ? std::string() : paths.runtime.consoleLog;
        auto hub = hubs_->vmRunning(e.vm, paths.runtime.serialSocket, log);
        if (!hub) logger().warn("VM {}: no console hub: {}", e.vm, hub.error().what());
    } else if (e.to == VmState::Stopped || e.to == VmState::Failed) {
        hubs_->vmStopped(e.vm);
    } else if (e.to == VmState::Destroyed) {
        hubs_->remove(e.vm);
    }
}

void Daemon::attachConsoles()
{
    for (const store::VmRecord* rec : manager_->list()) {
        if (!rec->runtime.pid) continue;
        followConsole(
            vm::StateEvent{rec->name(), model::VmState::Stopped, model::VmState::Running, "re-adopted"});
    }
}

void Daemon::publish(std::string_view topic, std::string_view vm, std::string_view fieldsJson)
{
    if (!server_) return;
    std::string params = "{\"topic\":" + json::quote(topic) + ",\"time\":" + json::quote(isoNow());
    if (!vm.empty()) params += ",\"vm\":" + json::quote(vm);
    if (!fieldsJson.empty()) {
        params += ',';
        params += fieldsJson;
    }
    params += '}';
    server_->publish(topic, vm, params);
}

void Daemon::reload()
{
    auto env = config::Env::fromProcess();
    auto settings = config::loadSettings(mode_, options_.configPath, env);
    if (!settings) {
        logger().error("Reload failed, keeping the running configuration: {}", settings.error().what());
        publish("daemon.reloaded", "", "\"ok\":false,\"error\":" + json::quote(settings.error().what()));
        return;
    }
    // Paths and the socket are fixed for the daemon's life; the rest applies now.
    settings_.logLevel = settings->logLevel;
    settings_.limits = settings->limits;
    applySettings();
    if (server_) server_->setLimits(rpcLimits(settings_));
    logger().info("Configuration reloaded");
    publish("daemon.reloaded", "", "\"ok\":true");
}

Result<void> Daemon::run()
{
    logger().info("vmrd {} ready (pid {}, {} mode, reactor {})", VMR_VERSION, ::getpid(),
                  mode_ == config::Mode::System ? "system" : "user",
                  reactor::backendName(reactor_->backend()));
    auto r = reactor_->run();
    logger().info("vmrd stopped");
    return r;
}

void Daemon::stop()
{
    if (stopping_) return;
    stopping_ = true;
    if (server_) server_->shutdown();
    reactor_->stop();
}

}  // namespace vmr::vmrd
