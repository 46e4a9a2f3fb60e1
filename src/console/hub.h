#pragma once

// The console hub of one VM: holds the one serial connection a hypervisor allows, keeps the
// scrollback, optionally writes the console log, and fans the bytes out to any number of
// viewers. A viewer that reads slowly never slows the VM or another viewer. See docs/console.md.

#include "base/result.h"
#include "console/log_file.h"
#include "console/scrollback.h"
#include "reactor/reactor.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::console {

enum class Mode { ReadWrite, ReadOnly };
std::string_view modeName(Mode m) noexcept;
// "rw" | "ro"; anything else is InvalidArgument with a hint.
Result<Mode> parseMode(std::string_view s);

struct HubOptions {
    size_t scrollbackBytes = 1 << 20;  // the ring replayed to new viewers and used to catch up
    size_t viewerBacklog = 256 << 10;  // bytes queued to one viewer before it stops being fed
    size_t inputBacklog = 64 << 10;    // viewer input queued to the serial before rw viewers pause
    // A log the hub writes itself (empty path: none, the hypervisor keeps its own).
    std::string logPath;
    uint64_t logMaxBytes = 8 << 20;
    reactor::Duration reconnectMin{20};
    reactor::Duration reconnectMax{1000};
};

// Checks the sizes (InvalidArgument naming the option).
Result<void> validate(const HubOptions& o);

struct ViewerInfo {
    uint64_t id = 0;
    Mode mode = Mode::ReadOnly;
    std::string label;          // who attached (e.g. "uid 1000 pid 4242")
    uint64_t sentBytes = 0;     // handed to its socket, markers excluded
    uint64_t skippedBytes = 0;  // lost because it fell behind by more than the scrollback
    size_t backlogBytes = 0;    // queued in vmrd right now
};

struct HubStats {
    bool connected = false;
    uint64_t bytesIn = 0;        // read from the serial since the hub was made
    uint64_t bytesToSerial = 0;  // viewer input written to the serial
    uint64_t connects = 0;       // successful serial connections
    size_t scrollbackBytes = 0;
    size_t scrollbackPieces = 0;
    size_t viewers = 0;
    std::string logError;  // the last log write error, if any (the stream goes on)
};

struct AttachOptions {
    Mode mode = Mode::ReadWrite;
    size_t scrollback = 0;  // bytes of scrollback to replay first (capped by what is kept)
    std::string label;
    std::string pendingInput;  // bytes the viewer sent before it was attached (rpc::Handover)
};

class Hub {
public:
    // Checks the options and opens the log file when the hub writes one.
    static Result<std::unique_ptr<Hub>> create(reactor::Reactor& r, std::string vm, HubOptions opts);
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;
    // Closes the serial connection and every viewer.
    ~Hub();

    // The VM runs (started or re-adopted): keep a connection to its serial socket, reconnecting
    // with backoff whenever it goes away, until vmStopped().
    void vmRunning(std::string serialPath);
    // The VM is gone: stop reconnecting; what was read is still sent, then viewers get EOF.
    void vmStopped();
    bool running() const noexcept { return running_; }

    struct Attached {
        uint64_t id = 0;
        size_t replayed = 0;  // bytes of scrollback queued before the live stream
    };
    // Takes a connected stream (a paused one is resumed) and starts feeding it.
    Attached attach(std::unique_ptr<reactor::Stream> stream, AttachOptions opts);
    // Closes a viewer at once; false when there is none by that id.
    bool detach(uint64_t id);

    std::vector<ViewerInfo> viewers() const;
    HubStats stats() const;
    const std::string& vm() const noexcept { return vm_; }
    const Scrollback& scrollback() const noexcept { return scrollback_; }

    // The inline line a viewer gets when it skipped `n` bytes.
    static std::string skipMarker(uint64_t n);

private:
    struct Viewer;

    Hub(reactor::Reactor& r, std::string vm, HubOptions opts, std::optional<LogFile> log);

    void tryConnect();
    void onSerial(UniqueFd fd);
    void onSerialData(std::string_view data);
    void onSerialClosed(const Error* err);
    void onInput(Viewer& v, std::string_view data);
    void pump(Viewer& v);
    void removeViewer(uint64_t id);
    void postReap();

    reactor::Reactor& reactor_;
    std::string vm_;
    HubOptions opts_;
    std::string serialPath_;
    bool running_ = false;
    bool ended_ = false;  // vmStopped() came: viewers that have everything get EOF
    reactor::Duration backoff_;
    // Owned: the serial connection, the scrollback, the log and the viewers.
    std::unique_ptr<reactor::Stream> serial_;
    reactor::Timer retry_;
    Scrollback scrollback_;
    std::optional<LogFile> log_;
    std::map<uint64_t, std::unique_ptr<Viewer>> viewers_;
    // Closed streams, destroyed on the next loop turn (not inside their own callbacks).
    std::vector<std::unique_ptr<Viewer>> closing_;
    std::vector<std::unique_ptr<reactor::Stream>> closingSerial_;
    uint64_t nextViewer_ = 1;
    HubStats stats_;
    bool reapPosted_ = false;
    reactor::TaskScope scope_;  // posted work
};

}  // namespace vmr::console
