#pragma once

// Choosing QEMU's accelerator (docs/vm.md, "Accelerator"). `auto` takes KVM only when it can
// boot ordinary guests: /dev/kvm opens read-write AND kvm_intel or kvm_amd is loaded (a host
// with only kvm_pvm, for one, has a /dev/kvm that cannot). Otherwise TCG, with one warning per
// selector (the daemon owns one). The decision is a pure function of a probe, for tests.

#include "base/result.h"
#include "model/vocab.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::vm {

using model::Accel;        // what runs: "kvm" | "tcg"
using model::AccelChoice;  // what settings (qemu.accel) or a VM (accel) ask for

inline std::string_view accelName(Accel a) noexcept
{
    return model::wordOf(a);
}
// A VM's choice, or else the settings' (text: "auto", "kvm" or "tcg"; empty means auto).
Result<AccelChoice> parseAccelChoice(std::string_view text);

// What the host offers. probeHost() fills it from /dev/kvm and /sys/module.
struct AccelProbe {
    bool devKvmUsable = false;  // open("/dev/kvm", O_RDWR) succeeded
    std::string devKvmError;    // why not, when it did not ("No such file or directory")
    bool kvmIntel = false;      // /sys/module/kvm_intel exists
    bool kvmAmd = false;        // /sys/module/kvm_amd exists
};
AccelProbe probeHost();

struct AccelDecision {
    Accel accel = Accel::Tcg;
    std::string why;        // one sentence: what decided it
    bool degraded = false;  // auto fell back to TCG (the warning case)
    bool operator==(const AccelDecision&) const = default;
};

// Forced kvm without a usable /dev/kvm is Unavailable (QEMU would fail anyway, less clearly).
Result<AccelDecision> decideAccel(AccelChoice choice, const AccelProbe& probe);

// How the accelerator is passed to QEMU.
struct AccelOptions {
    uint32_t tcgTbSizeMib = 64;  // TCG translation cache; QEMU's default makes RSS ~1 GB (GUESTS.md)
};
// {"-accel", "kvm", "-cpu", "host"} or {"-accel", "tcg,tb-size=64", "-cpu", "max"}: `max` has the
// rdrand the guests need for entropy at boot (GUESTS.md). withCpu=false leaves -cpu out
// (`-machine none` has no CPU to model).
std::vector<std::string> accelArgs(Accel accel, const AccelOptions& opts, bool withCpu = true);

// Holds the host probe (taken once) and logs the fallback warning once.
class AccelSelector {
public:
    explicit AccelSelector(AccelProbe probe) : probe_(std::move(probe)) {}

    Result<AccelDecision> choose(AccelChoice choice);
    const AccelProbe& probe() const noexcept { return probe_; }
    bool warned() const noexcept { return warned_; }

private:
    AccelProbe probe_;
    bool warned_ = false;
};

}  // namespace vmr::vm
