#pragma once

// vmrd.toml: the daemon's settings, their defaults per mode, and the paths derived from
// the environment (DESIGN.md, "State on disk"). docs/configuration.md lists every key.

#include "base/result.h"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmr::config {

// System mode: vmrd runs as root for the host. User mode: a plain user's own daemon.
enum class Mode { System, User };

std::string_view modeName(Mode m) noexcept;

// The parts of the process environment that decide default paths. Injected so that tests
// (and vmrctl) can compute paths for any user without touching the real environment.
// An empty string means "unset"; relative XDG values are ignored, as the XDG spec asks.
struct Env {
    std::string home;
    std::string xdgConfigHome;
    std::string xdgDataHome;
    std::string xdgRuntimeDir;
    uid_t uid = 0;

    // Reads $HOME (falling back to the passwd entry), the XDG variables and the real uid.
    static Env fromProcess();
};

// Root runs in system mode unless asked for user mode (`vmrd --user`).
Mode modeFor(const Env& env, bool forceUser);

struct PortRange {
    uint16_t first = 0;
    uint16_t last = 0;
    bool operator==(const PortRange&) const = default;
};

struct Settings {
    Mode mode = Mode::System;
    std::string configPath;  // the file actually read; empty when running on defaults

    std::string stateDir;    // state_dir
    std::string runtimeDir;  // runtime_dir
    std::string socket;      // socket
    // socket_group: the group whose members manage VMs (the socket's group). Empty: in system
    // mode "vmr" if that group exists, else root only; in user mode the daemon's own group.
    std::string socketGroup;
    // readonly_group: the group whose members may watch (list, status, events, logs, console
    // --ro) through <socket's folder>/vmrd-ro.sock. Empty: "vmr-ro" if it exists (system mode).
    std::string readonlyGroup;
    // hypervisor_user: in system mode, the user QEMU runs as (never root unless this says
    // "root"). Its files and sockets are handed to it as descriptors; it needs no access to
    // vmrd's folders, and /dev/kvm's group is added to its groups.
    std::string hypervisorUser = "vmr-vmm";
    std::string logLevel = "info";

    struct Limits {
        uint64_t maxRequestBytes = 1048576;
        uint64_t maxClientBacklog = 8388608;
        uint64_t maxClients = 4096;
    } limits;

    struct Qemu {
        std::string binary = "qemu-system-x86_64";
        std::string accel = "auto";
        // "none": QEMU without a guest (no CPU, devices or disks) for benchmarks of the daemon
        // itself; QMP, the console socket and the process lifecycle are the same.
        std::string machine = "q35";
        // sandbox: QEMU's seccomp filter (-sandbox on, with obsolete, elevateprivileges, spawn
        // and resourcecontrol denied).
        bool sandbox = true;
    } qemu;

    struct Images {
        std::string fetchProgram;  // vmr-fetch: a path or a name in PATH; empty: beside vmrd
        std::string caFile;        // extra CA certificates (PEM) for HTTPS downloads
    } images;

    struct Chv {
        std::string binary = "cloud-hypervisor";
        // cloud-hypervisor needs KVM; false skips the check, only for its stand-in (fake-chv).
        bool requireKvm = true;
    } chv;

    struct Network {
        PortRange sshPortRange{10022, 10999};
    } network;

    struct Console {
        uint64_t scrollback = 1048576;
    } console;
};

// The config file vmrd reads when none is given: /etc/vmr/vmrd.toml, or
// $XDG_CONFIG_HOME/vmr/vmrd.toml (default ~/.config/vmr/vmrd.toml) in user mode.
std::string defaultConfigPath(Mode mode, const Env& env);

// Every setting at its default. In user mode the directories come from the XDG variables;
// a path that cannot be derived (no HOME) is left empty and rejected by parse/load.
Settings defaultSettings(Mode mode, const Env& env);

// Where the daemon listens by default: <runtime_dir>/vmrd.sock.
std::string defaultSocketPath(Mode mode, const Env& env);

// Where a system vmrd's read-only socket is, beside its control socket:
// "<folder of socket>/vmrd-ro.sock" (docs/security.md). vmrd listens there, vmrctl looks there.
std::string readOnlySocketPath(const std::string& socket);

// Parse vmrd.toml text on top of the defaults. `fileName` is used in error messages only.
// Errors are ErrorKind::Config: "<file>:<line>:<column>: key "<key>": <problem>".
Result<Settings> parseSettings(std::string_view tomlText, std::string_view fileName, Mode mode,
                               const Env& env);

// Read and parse the config file: `explicitPath` if given (it must exist), else the default
// path for the mode (a missing default file means all defaults).
Result<Settings> loadSettings(Mode mode, std::optional<std::string> explicitPath, const Env& env);

}  // namespace vmr::config
