#pragma once

// The JSON-RPC server: accepts connections on the control socket, frames lines, parses
// requests, dispatches them through a method table, writes responses, and pushes `event`
// notifications to subscribers. It owns no VM logic: vmrd registers the methods.

#include "base/credentials.h"
#include "base/result.h"
#include "reactor/reactor.h"
#include "reactor/scope.h"
#include "rpc/framing.h"
#include "rpc/params.h"
#include "rpc/protocol.h"

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vmr::rpc {

struct Limits {
    size_t maxRequestBytes = 1 << 20;   // one line; past it: error reply, then close
    size_t maxClientBacklog = 8 << 20;  // bytes queued to one client before it is disconnected
    size_t maxClients = 4096;
};

// What a connection may do (docs/security.md): ReadOnly calls every method not marked
// mutating; Admin calls all of them.
enum class Role { ReadOnly, Admin };
std::string_view roleName(Role r) noexcept;  // "read-only" | "admin"

// Who is calling, from SO_PEERCRED and SO_PEERGROUPS, and the role the daemon gave them.
struct Peer {
    uint64_t connection = 0;
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary groups at connect time
    Role role = Role::Admin;
    Credentials credentials() const { return Credentials{uid, gid, groups}; }
};

// Decides a new connection's role, at most `ceiling` (the listener's); an error refuses the
// connection: it is sent as the only reply (id null), then the connection is closed.
using Authorizer = std::function<Result<Role>(const Peer& peer, Role ceiling)>;

// What a method handler sees.
struct Call {
    const Peer& peer;
    std::string_view method;
    const Params& params;
};

class Server;

// A connection handed over by a method with Method::takeOver: from now on it carries raw bytes,
// not JSON-RPC. The success reply is already queued on `stream` (it goes out first). The stream
// is paused and has no callbacks: the new owner calls start() with its own, then
// resumeReading(). `pending` holds the bytes the client sent after the request line, which the
// server read but did not parse; they come before anything the stream delivers.
struct Handover {
    Peer peer;
    std::unique_ptr<reactor::Stream> stream;
    std::string pending;
};

// A method is synchronous (answers at once) or asynchronous (a coroutine; the reply is sent
// when it finishes, other requests on the same connection are served meanwhile).
struct Method {
    std::function<Result<std::string>(const Call&)> sync;
    std::function<reactor::Task<Result<std::string>>(Peer peer, Params params)> async;
    bool mutating = false;  // needs the admin role; logged with the caller's credentials
    // Called after a successful reply on this connection; e.g. events.subscribe marks it.
    std::function<void(Server&, uint64_t connection, const Params&)> after;
    // Only with `async`: the method turns its connection into a raw byte stream (vm.console).
    // From the request on, the server parses nothing more on that connection. On success the
    // reply is queued, the server forgets the connection and calls takeOver with it (replies to
    // other requests still running on it are dropped); on an error the reply is sent and the
    // connection goes on as JSON-RPC. Refused inside a batch; ignored as a notification.
    std::function<void(const Params&, Handover)> takeOver;
};

class Server {
public:
    // Connections on `listening` are at most Admin.
    Server(reactor::Reactor& reactor, UniqueFd listening, Limits limits);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Another socket, whose connections get at most `ceiling` (the read-only socket).
    void addListener(UniqueFd listening, Role ceiling);
    // Without one, every connection gets its listener's role.
    void setAuthorizer(Authorizer a) { authorize_ = std::move(a); }

    void addMethod(std::string name, Method method);
    std::vector<std::string> methodNames() const;  // sorted

    // Subscriptions: the connection receives `event` notifications whose topic matches.
    // An empty topic set means every topic; `vm` filters events about one VM.
    void subscribe(uint64_t connection, std::set<std::string> topics, std::string vm);
    // Publish an event: {"topic":..., "vm":..., ...fields} is sent as
    // {"jsonrpc":"2.0","method":"event","params":{...}} to each matching subscriber.
    void publish(std::string_view topic, std::string_view vm, std::string_view paramsJson);

    // A notification to one connection ({"jsonrpc":"2.0","method":...,"params":...}), e.g. the
    // progress of a call it made. False when the connection is gone, or was closed because it
    // stopped reading (its backlog passed max_client_backlog).
    bool notify(uint64_t connection, std::string_view method, std::string_view paramsJson);

    // Stop accepting; close every connection (pending replies are dropped).
    void shutdown();

    size_t connectionCount() const noexcept { return connections_.size(); }
    void setLimits(const Limits& limits) { limits_ = limits; }

private:
    struct Connection;
    struct Pending;

    void onAccept(UniqueFd fd, Role ceiling);
    // Best effort, without waiting on the client: one error line before the connection goes.
    static void refuse(const UniqueFd& fd, const Error& err);
    // Frame and dispatch bytes from the client, one line at a time, so that the bytes after a
    // hand-over request are kept as they are.
    void consume(Connection& c, std::string_view data);
    void handOver(uint64_t connId, const Method& m, const Params& params, std::string reply);
    void resumeAfterRefusedHandover(uint64_t connId);
    void onLine(Connection& c, std::string_view line);
    void handleItem(Connection& c, Item& item, const std::shared_ptr<Pending>& batch, size_t slot);
    // The body of an asynchronous method call; a static member so that nothing it uses
    // lives in a lambda's captures across the suspension.
    static reactor::Task<void> runAsync(Server* self, uint64_t connId, std::shared_ptr<Pending> batch,
                                        size_t slot, Id id, bool notify, Method m, Peer peer, Params params);
    void finishItem(uint64_t connId, const std::shared_ptr<Pending>& batch, size_t slot, std::string reply);
    void send(Connection& c, std::string data);
    void closeConnection(uint64_t id, const char* why);
    void checkBacklog(Connection& c);
    void reap();

    reactor::Reactor& reactor_;
    Limits limits_;
    // Owned: the listener, every connection and the method table.
    std::vector<std::unique_ptr<reactor::Listener>> listeners_;
    Authorizer authorize_;
    std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
    std::vector<std::unique_ptr<Connection>>
        closing_;  // destroyed on the next loop turn, not inside callbacks
    std::unordered_map<std::string, Method> methods_;
    Parser parser_;
    uint64_t nextConnection_ = 1;
    bool reapPosted_ = false;
    reactor::TaskScope tasks_;  // the method calls in flight, and posted work
};

}  // namespace vmr::rpc
