#include "rpc/server.h"

#include "base/json.h"
#include "base/log.h"
#include "rpc/errors.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace vmr::rpc {

namespace {

spdlog::logger& logger()
{
    return log::get("rpc");
}

// The wire is one JSON text per line. A handler's result may be pretty-printed; a raw
// newline in JSON text can only be insignificant whitespace (inside strings it is escaped),
// so it becomes a space.
std::string oneLine(std::string json)
{
    if (json.find_first_of("\r\n") == std::string::npos) return json;
    for (char& ch : json) {
        if (ch == '\n' || ch == '\r') ch = ' ';
    }
    return json;
}

}  // namespace

// One client. Owned by Server::connections_ until it closes, then parked in closing_
// until the next loop turn so that no callback of its Stream is running when it dies.
struct Server::Connection {
    uint64_t id = 0;
    Peer peer;
    std::unique_ptr<reactor::Stream> stream;
    LineFramer framer;
    bool inData = false;  // inside onData: replies are gathered into `out`
    std::string out;      // replies gathered during one onData call
    bool closeWhenDrained = false;
    bool holding = false;  // a hand-over method runs: bytes are kept in `held`, not parsed
    std::string held;      // what the client sent after the hand-over request line
    bool subscribed = false;
    std::set<std::string> topics;
    std::string vmFilter;

    explicit Connection(size_t maxLine) : framer(maxLine) {}
};

// A batch waiting for its asynchronous items. Single requests use no Pending.
struct Server::Pending {
    std::vector<std::string> replies;  // one slot per item; empty for notifications
    size_t remaining = 0;
};

Server::Server(reactor::Reactor& reactor, UniqueFd listening, Limits limits)
    : reactor_(reactor), limits_(limits)
{
    addListener(std::move(listening), Role::Admin);
}

std::string_view roleName(Role r) noexcept
{
    return r == Role::Admin ? "admin" : "read-only";
}

void Server::addListener(UniqueFd listening, Role ceiling)
{
    listeners_.push_back(std::make_unique<reactor::Listener>(
        reactor_, std::move(listening), [this, ceiling](UniqueFd fd) { onAccept(std::move(fd), ceiling); }));
}

void Server::refuse(const UniqueFd& fd, const Error& err)
{
    std::string line = encodeError(Id{"null"}, err) + "\n";
    (void)::send(fd.get(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

Server::~Server()
{
    tasks_.cancelAll();  // no handler resumes into a server that is gone
    shutdown();
    closing_.clear();
}

void Server::addMethod(std::string name, Method method)
{
    methods_[std::move(name)] = std::move(method);
}

std::vector<std::string> Server::methodNames() const
{
    std::vector<std::string> names;
    names.reserve(methods_.size());
    for (const auto& [name, m] : methods_) names.push_back(name);
    std::sort(names.begin(), names.end());
    return names;
}

void Server::shutdown()
{
    for (auto& l : listeners_) l->stop();
    listeners_.clear();
    std::vector<uint64_t> ids;
    ids.reserve(connections_.size());
    for (auto& [id, c] : connections_) ids.push_back(id);
    for (auto id : ids) closeConnection(id, nullptr);
}

void Server::onAccept(UniqueFd fd, Role ceiling)
{
    if (connections_.size() >= limits_.maxClients) {
        refuse(fd, Error(ErrorKind::Busy, "Too many clients are connected",
                         "Close idle connections, or raise limits.max_clients in vmrd.toml"));
        logger().warn("Refused a client: {} connections already open", connections_.size());
        return;
    }
    Peer peer;
    peer.connection = nextConnection_++;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        peer.pid = cred.pid;
        peer.uid = cred.uid;
        peer.gid = cred.gid;
    } else {
        // Nobody to authorize: never more than read-only.
        peer.uid = static_cast<uid_t>(-1);
        peer.gid = static_cast<gid_t>(-1);
    }
    std::vector<gid_t> groups(64);
    socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) != 0 && errno == ERANGE) {
        groups.resize(glen / sizeof(gid_t));
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) != 0) glen = 0;
    }
    groups.resize(glen / sizeof(gid_t));
    peer.groups = std::move(groups);
    peer.role = ceiling;
    if (authorize_) {
        auto role = authorize_(peer, ceiling);
        if (!role) {
            refuse(fd, role.error());
            logger().info("Refused uid={} gid={} pid={}: {}", peer.uid, peer.gid, peer.pid,
                          role.error().message());
            return;
        }
        peer.role = std::min(*role, ceiling);
    }
    auto c = std::make_unique<Connection>(limits_.maxRequestBytes);
    c->id = peer.connection;
    c->stream = std::make_unique<reactor::Stream>(reactor_, std::move(fd));
    c->peer = std::move(peer);
    uint64_t id = c->id;
    auto* raw = c.get();
    connections_.emplace(id, std::move(c));
    logger().debug("client {} connected (uid={} gid={} pid={}, {})", id, raw->peer.uid, raw->peer.gid,
                   raw->peer.pid, roleName(raw->peer.role));

    reactor::Stream::Callbacks cbs;
    cbs.onData = [this, raw](std::string_view data) { consume(*raw, data); };
    cbs.onClose = [this, id](const Error* err) {
        if (err != nullptr) logger().debug("client {} closed: {}", id, err->what());
        closeConnection(id, nullptr);
    };
    cbs.onDrained = [this, raw]() {
        Connection& conn = *raw;
        if (conn.closeWhenDrained) {
            closeConnection(conn.id, nullptr);
            return;
        }
    };
    raw->stream->start(std::move(cbs));
}

void Server::consume(Connection& conn, std::string_view data)
{
    conn.inData = true;
    auto deliver = [this, &conn](std::string_view line) {
        if (!conn.closeWhenDrained && !conn.holding) onLine(conn, line);
    };
    Result<void> fed = success();
    while (!data.empty()) {
        if (conn.holding) {
            conn.held.append(data);  // at most one read more: reading is paused below
            break;
        }
        size_t nl = data.find('\n');
        size_t take = nl == std::string_view::npos ? data.size() : nl + 1;
        fed = conn.framer.feed(data.substr(0, take), deliver);
        if (!fed) break;
        data.remove_prefix(take);
    }
    conn.inData = false;
    if (!fed) {
        Error err = std::move(fed).error();
        logger().warn("client {}: {}; closing the connection", conn.id, err.what());
        conn.out += encodeError(Id{"null"}, err);
        conn.out += '\n';
        conn.closeWhenDrained = true;
    }
    if (!conn.out.empty()) {
        std::string out;
        out.swap(conn.out);
        send(conn, std::move(out));
    }
    if ((conn.closeWhenDrained || conn.holding) && conn.stream && !conn.stream->closed())
        conn.stream->pauseReading();
}

void Server::onLine(Connection& c, std::string_view line)
{
    auto parsed = parser_.parse(line);
    if (!parsed) {
        send(c, encodeError(Id{"null"}, parsed.error()) + "\n");
        return;
    }
    Message& msg = *parsed;
    if (!msg.batch) {
        if (!msg.items.empty()) handleItem(c, msg.items.front(), nullptr, 0);
        return;
    }
    auto batch = std::make_shared<Pending>();
    batch->replies.resize(msg.items.size());
    batch->remaining = msg.items.size();
    for (size_t i = 0; i < msg.items.size(); ++i) handleItem(c, msg.items[i], batch, i);
}

void Server::handleItem(Connection& c, Item& item, const std::shared_ptr<Pending>& batch, size_t slot)
{
    uint64_t connId = c.id;
    if (!item.request) {
        Error err = item.error ? *item.error : Error(ErrorKind::InvalidRequest, "Invalid request");
        finishItem(connId, batch, slot, encodeError(item.id, err));
        return;
    }
    Request& req = *item.request;
    bool notify = req.notification();
    auto it = methods_.find(req.method);
    if (it == methods_.end()) {
        Error err(ErrorKind::MethodNotFound, "Unknown method `" + req.method + "`",
                  "Run `vmrctl rpc vmr.methods` to list the methods this vmrd knows");
        finishItem(connId, batch, slot, notify ? std::string() : encodeError(req.id, err));
        return;
    }
    const Method& m = it->second;
    auto params = Params::parse(req.params);
    if (!params) {
        finishItem(connId, batch, slot, notify ? std::string() : encodeError(req.id, params.error()));
        return;
    }
    if (m.mutating && c.peer.role != Role::Admin) {
        Error err(ErrorKind::PermissionDenied,
                  "`" + req.method + "` changes VMs, and this connection is read-only",
                  "Join the group that owns vmrd's socket (docs/security.md), then connect again");
        finishItem(connId, batch, slot, notify ? std::string() : encodeError(req.id, err));
        return;
    }
    if (m.mutating) {
        std::string vm;
        if (auto name = params->optString("name"); name && *name) vm = " (VM " + **name + ")";
        logger().info("{} by uid={} gid={} pid={}{}", req.method, c.peer.uid, c.peer.gid, c.peer.pid, vm);
    }
    if (m.sync) {
        Call call{c.peer, req.method, *params};
        auto result = m.sync(call);
        if (result && m.after) m.after(*this, connId, *params);
        std::string reply;
        if (!notify)
            reply = result ? encodeResult(req.id, oneLine(std::move(*result)))
                           : encodeError(req.id, result.error());
        finishItem(connId, batch, slot, std::move(reply));
        return;
    }
    if (m.takeOver) {
        if (batch) {
            Error err(ErrorKind::InvalidRequest, "`" + req.method + "` cannot be part of a batch",
                      "Send it as a single request on its own line");
            finishItem(connId, batch, slot, notify ? std::string() : encodeError(req.id, err));
            return;
        }
        if (notify) return;  // nobody would learn that the connection changed hands
        // Nothing after this line is parsed until the method finishes. The coroutine starts on
        // the next loop turn, so that it never finishes inside consume().
        c.holding = true;
        tasks_.post(reactor_, [this, connId, id = req.id, m, peer = c.peer, p = std::move(*params)]() {
            tasks_.spawn(runAsync(this, connId, nullptr, 0, id, false, m, peer, p));
        });
        return;
    }
    // Asynchronous: the coroutine runs on; its reply goes out when it completes, if the
    // connection (and this server) still exist then.
    tasks_.spawn(runAsync(this, connId, batch, slot, req.id, notify, m, c.peer, std::move(*params)));
}

reactor::Task<void> Server::runAsync(Server* self, uint64_t connId, std::shared_ptr<Pending> batch,
                                     size_t slot, Id id, bool notify, Method m, Peer peer, Params params)
{
    // The server's scope owns this task: it never resumes after the server is gone.
    auto result = co_await m.async(peer, params);
    if (m.takeOver) {
        if (result) {
            self->handOver(connId, m, params, encodeResult(id, oneLine(std::move(*result))));
        } else {
            self->finishItem(connId, nullptr, 0, encodeError(id, result.error()));
            self->resumeAfterRefusedHandover(connId);
        }
        co_return;
    }
    if (result && m.after) m.after(*self, connId, params);
    std::string reply;
    if (!notify)
        reply = result ? encodeResult(id, oneLine(std::move(*result))) : encodeError(id, result.error());
    self->finishItem(connId, batch, slot, std::move(reply));
}

void Server::handOver(uint64_t connId, const Method& m, const Params& params, std::string reply)
{
    auto it = connections_.find(connId);
    if (it == connections_.end()) return;  // the client left meanwhile
    Connection& c = *it->second;
    if (!c.stream || c.stream->closed()) return;
    reply += '\n';
    c.stream->write(std::move(reply));
    Handover h;
    h.peer = c.peer;
    h.pending = std::move(c.held);
    h.stream = std::move(c.stream);
    // The old callbacks point at the Connection, which goes away.
    h.stream->pauseReading();
    h.stream->start(reactor::Stream::Callbacks{});
    logger().debug("client {} handed over as a raw stream", connId);
    closeConnection(connId, nullptr);
    m.takeOver(params, std::move(h));
}

void Server::resumeAfterRefusedHandover(uint64_t connId)
{
    auto it = connections_.find(connId);
    if (it == connections_.end()) return;
    Connection& c = *it->second;
    c.holding = false;
    std::string held = std::move(c.held);
    c.held.clear();
    if (!held.empty()) consume(c, held);
    if (!c.holding && !c.closeWhenDrained && c.stream && !c.stream->closed()) c.stream->resumeReading();
}

void Server::finishItem(uint64_t connId, const std::shared_ptr<Pending>& batch, size_t slot,
                        std::string reply)
{
    auto it = connections_.find(connId);
    if (!batch) {
        if (it == connections_.end() || reply.empty()) return;
        reply += '\n';
        send(*it->second, std::move(reply));
        return;
    }
    batch->replies[slot] = std::move(reply);
    if (--batch->remaining != 0) return;
    if (it == connections_.end()) return;
    std::string out;
    for (auto& r : batch->replies) {
        if (r.empty()) continue;
        out += out.empty() ? '[' : ',';
        out += r;
    }
    if (out.empty()) return;  // a batch of notifications gets no reply at all
    out += "]\n";
    send(*it->second, std::move(out));
}

void Server::send(Connection& c, std::string data)
{
    if (!c.stream || c.stream->closed()) return;
    if (c.inData) {
        c.out += data;
        return;
    }
    c.stream->write(std::move(data));
    checkBacklog(c);
}

void Server::checkBacklog(Connection& c)
{
    size_t pending = c.stream->pendingWriteBytes();
    if (pending > limits_.maxClientBacklog) {
        logger().warn("client {} (pid {}) stopped reading: {} bytes queued; disconnecting", c.id, c.peer.pid,
                      pending);
        closeConnection(c.id, nullptr);
    }
}

void Server::closeConnection(uint64_t id, const char* why)
{
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    if (why != nullptr) logger().debug("client {}: {}", id, why);
    std::unique_ptr<Connection> c = std::move(it->second);
    connections_.erase(it);
    if (c->stream) c->stream->close();  // none once handed over
    closing_.push_back(std::move(c));
    if (!reapPosted_) {
        reapPosted_ = true;
        tasks_.post(reactor_, [this]() { reap(); });
    }
}

void Server::reap()
{
    reapPosted_ = false;
    closing_.clear();
}

void Server::subscribe(uint64_t connection, std::set<std::string> topics, std::string vm)
{
    auto it = connections_.find(connection);
    if (it == connections_.end()) return;
    it->second->subscribed = true;
    it->second->topics = std::move(topics);
    it->second->vmFilter = std::move(vm);
}

void Server::publish(std::string_view topic, std::string_view vm, std::string_view paramsJson)
{
    std::shared_ptr<const std::string> line;
    std::vector<uint64_t> over;
    for (auto& [id, c] : connections_) {
        if (!c->subscribed) continue;
        if (!c->topics.empty() && c->topics.find(std::string(topic)) == c->topics.end()) continue;
        if (!c->vmFilter.empty() && c->vmFilter != vm) continue;
        if (!line) line = std::make_shared<const std::string>(encodeNotification("event", paramsJson) + "\n");
        c->stream->write(line);
        if (c->stream->pendingWriteBytes() > limits_.maxClientBacklog) over.push_back(id);
    }
    for (auto id : over) {
        logger().warn("event subscriber {} stopped reading; disconnecting", id);
        closeConnection(id, nullptr);
    }
}

bool Server::notify(uint64_t connection, std::string_view method, std::string_view paramsJson)
{
    auto it = connections_.find(connection);
    if (it == connections_.end()) return false;
    Connection& c = *it->second;
    c.stream->write(std::make_shared<const std::string>(encodeNotification(method, paramsJson) + "\n"));
    if (c.stream->pendingWriteBytes() > limits_.maxClientBacklog) {
        logger().warn("client {} stopped reading its notifications; disconnecting", connection);
        closeConnection(connection, nullptr);
        return false;
    }
    return true;
}

}  // namespace vmr::rpc
