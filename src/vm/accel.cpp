#include "vm/accel.h"

#include "base/fd.h"
#include "base/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmr::vm {

Result<AccelChoice> parseAccelChoice(std::string_view text)
{
    if (text.empty()) return AccelChoice::Auto;
    return model::parseWord<AccelChoice>(text);
}

AccelProbe probeHost()
{
    AccelProbe p;
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        p.devKvmUsable = true;
        ::close(fd);
    } else {
        p.devKvmError = std::strerror(errno);
    }
    struct stat st {};
    p.kvmIntel = ::stat("/sys/module/kvm_intel", &st) == 0;
    p.kvmAmd = ::stat("/sys/module/kvm_amd", &st) == 0;
    return p;
}

Result<AccelDecision> decideAccel(AccelChoice choice, const AccelProbe& probe)
{
    switch (choice) {
        case AccelChoice::Tcg: return AccelDecision{Accel::Tcg, "TCG asked for", false};
        case AccelChoice::Kvm:
            if (!probe.devKvmUsable)
                return Error(ErrorKind::Unavailable,
                             "KVM was asked for but /dev/kvm cannot be opened: " + probe.devKvmError,
                             "Use accel \"tcg\" or \"auto\", or give this user access to /dev/kvm");
            return AccelDecision{Accel::Kvm, "KVM asked for", false};
        case AccelChoice::Auto: break;
    }
    if (!probe.devKvmUsable)
        return AccelDecision{Accel::Tcg, "/dev/kvm cannot be opened read-write (" + probe.devKvmError + ")",
                             true};
    if (!probe.kvmIntel && !probe.kvmAmd)
        return AccelDecision{Accel::Tcg, "/dev/kvm exists but neither kvm_intel nor kvm_amd is loaded", true};
    return AccelDecision{Accel::Kvm, probe.kvmIntel ? "kvm_intel is loaded" : "kvm_amd is loaded", false};
}

std::vector<std::string> accelArgs(Accel accel, const AccelOptions& opts, bool withCpu)
{
    std::vector<std::string> args;
    if (accel == Accel::Kvm) {
        args = {"-accel", "kvm"};
        if (withCpu) args.insert(args.end(), {"-cpu", "host"});
    } else {
        args = {"-accel", "tcg,tb-size=" + std::to_string(opts.tcgTbSizeMib)};
        if (withCpu) args.insert(args.end(), {"-cpu", "max"});
    }
    return args;
}

Result<AccelDecision> AccelSelector::choose(AccelChoice choice)
{
    auto d = decideAccel(choice, probe_);
    if (d && d->degraded && !warned_) {
        warned_ = true;
        // Once per daemon: every VM of this host runs under TCG for the same reason.
        log::get("vm").warn("KVM cannot boot guests here: {}; VMs run under TCG (slow)", d->why);
    }
    return d;
}

}  // namespace vmr::vm
