#include "console/hub.h"

#include "base/log.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmr::console {

namespace {

spdlog::logger& logger()
{
    return log::get("console");
}

Result<void> atLeast(const char* option, uint64_t value, uint64_t min)
{
    if (value >= min) return success();
    return Error(ErrorKind::InvalidArgument,
                 std::string("Console option ") + option + " is " + std::to_string(value) +
                     ", below its minimum " + std::to_string(min),
                 std::string("Set ") + option + " to at least " + std::to_string(min));
}

}  // namespace

std::string_view modeName(Mode m) noexcept
{
    return m == Mode::ReadWrite ? "rw" : "ro";
}

Result<Mode> parseMode(std::string_view s)
{
    if (s == "rw") return Mode::ReadWrite;
    if (s == "ro") return Mode::ReadOnly;
    return Error(ErrorKind::InvalidArgument, "Unknown console mode \"" + std::string(s) + "\"",
                 "Use \"rw\" to type into the console or \"ro\" to only watch it");
}

Result<void> validate(const HubOptions& o)
{
    VMR_TRY(atLeast("scrollback_bytes", o.scrollbackBytes, 4096));
    VMR_TRY(atLeast("viewer_backlog_bytes", o.viewerBacklog, 4096));
    VMR_TRY(atLeast("input_backlog_bytes", o.inputBacklog, 1024));
    if (!o.logPath.empty()) VMR_TRY(atLeast("log_max_bytes", o.logMaxBytes, 4096));
    if (o.reconnectMin.count() <= 0 || o.reconnectMax < o.reconnectMin)
        return Error(ErrorKind::InvalidArgument,
                     "The console reconnect delays must be positive, minimum first",
                     "Give a reconnect minimum above 0 and a maximum at least as large");
    return success();
}

// One viewer: its connection and how far into the stream it has been sent.
struct Hub::Viewer {
    uint64_t id = 0;
    Mode mode = Mode::ReadOnly;
    std::string label;
    std::unique_ptr<reactor::Stream> stream;
    uint64_t next = 0;  // the number of the next byte to queue to it
    uint64_t sent = 0;
    uint64_t skipped = 0;
    bool inputPaused = false;  // its input waits for the serial to drain
};

std::string Hub::skipMarker(uint64_t n)
{
    return "\r\n[vmr: skipped " + std::to_string(n) +
           " bytes of console output: this viewer fell behind]\r\n";
}

Result<std::unique_ptr<Hub>> Hub::create(reactor::Reactor& r, std::string vm, HubOptions opts)
{
    VMR_TRY(validate(opts));
    std::optional<LogFile> log;
    if (!opts.logPath.empty()) {
        auto f = LogFile::open(opts.logPath, opts.logMaxBytes);
        if (!f) return std::move(f).error();
        log.emplace(std::move(*f));
    }
    return std::unique_ptr<Hub>(new Hub(r, std::move(vm), std::move(opts), std::move(log)));
}

Hub::Hub(reactor::Reactor& r, std::string vm, HubOptions opts, std::optional<LogFile> log)
    : reactor_(r),
      vm_(std::move(vm)),
      opts_(std::move(opts)),
      backoff_(opts_.reconnectMin),
      retry_(r, [this] { tryConnect(); }),
      scrollback_(opts_.scrollbackBytes),
      log_(std::move(log))
{
}

Hub::~Hub()
{
    scope_.cancelAll();
    retry_.stop();
    viewers_.clear();
    serial_.reset();
    closing_.clear();
    closingSerial_.clear();
}

// ---- the serial side --------------------------------------------------------------------

void Hub::vmRunning(std::string serialPath)
{
    bool samePath = serialPath == serialPath_;
    serialPath_ = std::move(serialPath);
    running_ = true;
    ended_ = false;
    if (serial_ && samePath) return;
    if (serial_) {
        closingSerial_.push_back(std::move(serial_));
        closingSerial_.back()->close();
        postReap();
    }
    backoff_ = opts_.reconnectMin;
    retry_.stop();
    tryConnect();
}

void Hub::vmStopped()
{
    running_ = false;
    ended_ = true;
    retry_.stop();
    // With the serial still open, its EOF ends the viewers once what it had is delivered.
    if (!serial_) {
        for (auto& [id, v] : viewers_) pump(*v);
    }
}

void Hub::tryConnect()
{
    if (!running_ || serial_) return;
    sockaddr_un addr{};
    if (serialPath_.empty() || serialPath_.size() >= sizeof(addr.sun_path)) {
        logger().warn("VM {}: the serial socket path \"{}\" cannot be used (1 to {} bytes)", vm_, serialPath_,
                      sizeof(addr.sun_path) - 1);
        return;
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, serialPath_.data(), serialPath_.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    // A unix connect() finishes at once: connected, refused, missing or (backlog full) EAGAIN.
    if (fd && ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
        backoff_ = opts_.reconnectMin;
        onSerial(std::move(fd));
        return;
    }
    logger().debug("VM {}: cannot connect to {}: {}; retrying in {} ms", vm_, serialPath_,
                   std::strerror(errno), backoff_.count());
    retry_.start(backoff_);
    backoff_ = std::min(backoff_ * 2, opts_.reconnectMax);
}

void Hub::onSerial(UniqueFd fd)
{
    serial_ = std::make_unique<reactor::Stream>(reactor_, std::move(fd));
    ++stats_.connects;
    logger().debug("VM {}: connected to its serial console {}", vm_, serialPath_);
    reactor::Stream::Callbacks cbs;
    cbs.onData = [this](std::string_view data) { onSerialData(data); };
    cbs.onClose = [this](const Error* err) { onSerialClosed(err); };
    cbs.onDrained = [this] {
        for (auto& [id, v] : viewers_) {
            if (!v->inputPaused) continue;
            v->inputPaused = false;
            v->stream->resumeReading();
        }
    };
    serial_->start(std::move(cbs));
}

void Hub::onSerialData(std::string_view data)
{
    stats_.bytesIn += data.size();
    if (log_) {
        if (auto w = log_->append(data); !w) {
            if (stats_.logError.empty()) logger().warn("VM {}: {}", vm_, w.error().what());
            stats_.logError = w.error().what();
        }
    }
    scrollback_.append(data);
    for (auto& [id, v] : viewers_) pump(*v);
}

void Hub::onSerialClosed(const Error* err)
{
    logger().debug("VM {}: serial console closed{}{}", vm_, err != nullptr ? ": " : "",
                   err != nullptr ? err->what() : std::string());
    // Inside the stream's own callback: destroy it on the next turn.
    closingSerial_.push_back(std::move(serial_));
    postReap();
    for (auto& [id, v] : viewers_) {
        if (v->inputPaused) {
            v->inputPaused = false;
            v->stream->resumeReading();
        }
    }
    if (running_) {
        retry_.start(backoff_);
        backoff_ = std::min(backoff_ * 2, opts_.reconnectMax);
        return;
    }
    for (auto& [id, v] : viewers_) pump(*v);
}

// ---- viewers ----------------------------------------------------------------------------

Hub::Attached Hub::attach(std::unique_ptr<reactor::Stream> stream, AttachOptions opts)
{
    auto v = std::make_unique<Viewer>();
    v->id = nextViewer_++;
    v->mode = opts.mode;
    v->label = std::move(opts.label);
    v->stream = std::move(stream);
    size_t replay = std::min({opts.scrollback, scrollback_.bytes(), opts_.scrollbackBytes});
    v->next = scrollback_.end() - replay;
    Viewer* raw = v.get();
    uint64_t id = v->id;
    viewers_.emplace(id, std::move(v));

    reactor::Stream::Callbacks cbs;
    cbs.onData = [this, raw](std::string_view data) { onInput(*raw, data); };
    cbs.onClose = [this, id](const Error*) { removeViewer(id); };
    cbs.onDrained = [this, raw] { pump(*raw); };
    raw->stream->start(std::move(cbs));
    raw->stream->resumeReading();
    logger().debug("VM {}: viewer {} ({}, {}) attached, replaying {} bytes", vm_, id, modeName(raw->mode),
                   raw->label, replay);
    if (raw->stream->closed()) {
        removeViewer(id);
        return Attached{id, 0};
    }
    if (!opts.pendingInput.empty()) onInput(*raw, opts.pendingInput);
    pump(*raw);
    return Attached{id, replay};
}

bool Hub::detach(uint64_t id)
{
    if (viewers_.find(id) == viewers_.end()) return false;
    removeViewer(id);
    return true;
}

void Hub::onInput(Viewer& v, std::string_view data)
{
    if (v.mode == Mode::ReadOnly || !serial_ || serial_->closed()) return;  // dropped
    serial_->write(std::string(data));
    stats_.bytesToSerial += data.size();
    if (serial_->pendingWriteBytes() > opts_.inputBacklog && !v.inputPaused) {
        v.inputPaused = true;
        v.stream->pauseReading();
    }
}

void Hub::pump(Viewer& v)
{
    reactor::Stream& s = *v.stream;
    while (!s.closed() && v.next < scrollback_.end() && s.pendingWriteBytes() < opts_.viewerBacklog) {
        if (v.next < scrollback_.begin()) {
            uint64_t missed = scrollback_.begin() - v.next;
            v.skipped += missed;
            v.next = scrollback_.begin();
            s.write(skipMarker(missed));
            continue;
        }
        auto slice = scrollback_.at(v.next);
        size_t offset = static_cast<size_t>(v.next - slice.first);
        size_t n = slice.piece->size() - offset;
        if (offset == 0)
            s.write(slice.piece);  // the buffer every viewer shares
        else
            s.write(slice.piece->substr(offset));
        v.next += n;
        v.sent += n;
    }
    // The VM is gone and this viewer has everything: end its stream once it is flushed.
    if (ended_ && !serial_ && v.next >= scrollback_.end() && !s.closed()) s.shutdownWrite();
}

void Hub::removeViewer(uint64_t id)
{
    auto it = viewers_.find(id);
    if (it == viewers_.end()) return;
    logger().debug("VM {}: viewer {} detached", vm_, id);
    std::unique_ptr<Viewer> v = std::move(it->second);
    viewers_.erase(it);
    v->stream->close();
    closing_.push_back(std::move(v));
    postReap();
}

void Hub::postReap()
{
    if (reapPosted_) return;
    reapPosted_ = true;
    scope_.post(reactor_, [this] {
        reapPosted_ = false;
        closing_.clear();
        closingSerial_.clear();
    });
}

std::vector<ViewerInfo> Hub::viewers() const
{
    std::vector<ViewerInfo> out;
    out.reserve(viewers_.size());
    for (const auto& [id, v] : viewers_) {
        ViewerInfo info;
        info.id = id;
        info.mode = v->mode;
        info.label = v->label;
        info.sentBytes = v->sent;
        info.skippedBytes = v->skipped;
        info.backlogBytes = v->stream->pendingWriteBytes();
        out.push_back(std::move(info));
    }
    return out;
}

HubStats Hub::stats() const
{
    HubStats s = stats_;
    s.connected = serial_ != nullptr;
    s.scrollbackBytes = scrollback_.bytes();
    s.scrollbackPieces = scrollback_.pieces();
    s.viewers = viewers_.size();
    return s;
}

}  // namespace vmr::console
