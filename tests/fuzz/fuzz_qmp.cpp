// libFuzzer target for the QMP codec: the line splitter, parseMessage, and query-status
// decoding of every `return`. The unit suite replays tests/fuzz/corpus/qmp/ through it.

#include "qmp/message.h"
#include "qmp/status.h"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string_view input(reinterpret_cast<const char*>(data), size);
    // A small limit too, so the over-long path is reached with small inputs.
    for (size_t limit : {vmr::qmp::LineSplitter::kMaxLine, size_t{64}}) {
        vmr::qmp::LineSplitter lines(limit);
        // Feed in two parts, split where the first byte says: framing must not depend on it.
        size_t cut = size > 0 ? data[0] % (size + 1) : 0;
        lines.append(input.substr(0, cut));
        for (int round = 0; round < 2; ++round) {
            for (;;) {
                auto line = lines.next();
                if (!line || !*line) break;
                auto msg = vmr::qmp::parseMessage(**line);
                if (!msg) continue;
                if (auto* ret = std::get_if<vmr::qmp::Return>(&*msg)) {
                    auto status = vmr::qmp::parseStatusInfo(ret->json);
                    if (status) {
                        auto state = vmr::qmp::parseRunState(vmr::qmp::runStateName(status->status));
                        if (!state || *state != status->status) __builtin_trap();
                        (void)vmr::qmp::lifecycleOf(status->status);
                    }
                    // What the parser gives back as JSON must parse again.
                    if (!vmr::qmp::validateArguments(ret->json).ok() && !ret->json.empty() &&
                        ret->json[0] == '{') {
                        __builtin_trap();
                    }
                } else if (auto* ev = std::get_if<vmr::qmp::Event>(&*msg)) {
                    if (!vmr::qmp::validateArguments(ev->data).ok()) __builtin_trap();
                }
            }
            if (round == 0) lines.append(input.substr(cut));
        }
    }
    return 0;
}
