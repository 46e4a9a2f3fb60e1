#pragma once

// The words of the VM model (docs/architecture.md): backends, network modes, accelerators,
// firmware and states. Each enum has one table of wire names; everything that reads or writes
// one of these words (records, RPC params, VMFiles, templates, vmrd.toml, messages) goes
// through wordOf() and parseWord(), so a word is spelt in exactly one place.

#include "base/result.h"

#include <array>
#include <span>
#include <string>
#include <string_view>

namespace vmr::model {

// The hypervisor program that runs a VM.
enum class Backend { Qemu, Chv };
// User: QEMU's user-mode stack (SLIRP) with SSH forwarded from 127.0.0.1. Tap: a tap device on
// a host bridge. None: no NIC.
enum class NetMode { User, Tap, None };
// What a VM or vmrd.toml asks for (qemu.accel, a VM's accel).
enum class AccelChoice { Auto, Kvm, Tcg };
// What a running hypervisor uses.
enum class Accel { Kvm, Tcg };
// The firmware a VM boots: QEMU's BIOS, OVMF (UEFI) as installed, or a file of the user's.
enum class FirmwareKind { Bios, Uefi, File };
// The per-VM state machine (vm/state.h has its transitions).
enum class VmState { Preparing, Prepared, Starting, Running, Paused, Stopping, Stopped, Failed, Destroyed };

template <typename E>
struct Word {
    E value;
    std::string_view name;
};

// The table of each enum: `what` names the kind of word in messages ("backend").
template <typename E>
struct Vocabulary;

template <>
struct Vocabulary<Backend> {
    static constexpr std::string_view what = "backend";
    static constexpr std::array<Word<Backend>, 2> words = {{{Backend::Qemu, "qemu"}, {Backend::Chv, "chv"}}};
};
template <>
struct Vocabulary<NetMode> {
    static constexpr std::string_view what = "network";
    static constexpr std::array<Word<NetMode>, 3> words = {
        {{NetMode::User, "user"}, {NetMode::Tap, "tap"}, {NetMode::None, "none"}}};
};
template <>
struct Vocabulary<AccelChoice> {
    static constexpr std::string_view what = "accel";
    static constexpr std::array<Word<AccelChoice>, 3> words = {
        {{AccelChoice::Auto, "auto"}, {AccelChoice::Kvm, "kvm"}, {AccelChoice::Tcg, "tcg"}}};
};
template <>
struct Vocabulary<Accel> {
    static constexpr std::string_view what = "accelerator";
    static constexpr std::array<Word<Accel>, 2> words = {{{Accel::Kvm, "kvm"}, {Accel::Tcg, "tcg"}}};
};
template <>
struct Vocabulary<VmState> {
    static constexpr std::string_view what = "state";
    static constexpr std::array<Word<VmState>, 9> words = {{{VmState::Preparing, "preparing"},
                                                            {VmState::Prepared, "prepared"},
                                                            {VmState::Starting, "starting"},
                                                            {VmState::Running, "running"},
                                                            {VmState::Paused, "paused"},
                                                            {VmState::Stopping, "stopping"},
                                                            {VmState::Stopped, "stopped"},
                                                            {VmState::Failed, "failed"},
                                                            {VmState::Destroyed, "destroyed"}}};
};

// `"a", "b" or "c"`: quoted words for messages and hints.
std::string joinWords(std::span<const std::string_view> names);

namespace detail {
// InvalidArgument: `Unknown backend "kvm"; expected "qemu" or "chv"`, with a did-you-mean hint.
Error unknownWord(std::string_view what, std::string_view text, std::span<const std::string_view> names);
}  // namespace detail

template <typename E>
constexpr std::string_view wordOf(E value) noexcept
{
    for (const auto& w : Vocabulary<E>::words)
        if (w.value == value) return w.name;
    return "?";
}

template <typename E>
constexpr std::array<std::string_view, Vocabulary<E>::words.size()> wordNames() noexcept
{
    std::array<std::string_view, Vocabulary<E>::words.size()> out{};
    for (size_t i = 0; i < out.size(); ++i) out[i] = Vocabulary<E>::words[i].name;
    return out;
}

// `"qemu" or "chv"`: the words, for messages and hints.
template <typename E>
std::string wordChoices()
{
    auto names = wordNames<E>();
    return joinWords(names);
}

template <typename E>
Result<E> parseWord(std::string_view text)
{
    for (const auto& w : Vocabulary<E>::words)
        if (w.name == text) return w.value;
    auto names = wordNames<E>();
    return detail::unknownWord(Vocabulary<E>::what, text, names);
}

}  // namespace vmr::model
