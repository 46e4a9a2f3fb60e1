#pragma once

// The cloud-hypervisor API client (docs/chv.md): HTTP/1.1 over the VMM's unix socket on the
// reactor, one request per connection (the server may close after each answer, and a request
// that hangs cannot block the next one), each with a timeout. A non-2xx answer is an error
// carrying the status and the server's error chain. Tap fds go along with SCM_RIGHTS.

#include "base/result.h"
#include "chv/http.h"
#include "chv/vm_config.h"
#include "reactor/reactor.h"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::chv {

using reactor::Duration;

struct Response {
    int status = 0;
    std::string body;
};

class Client {
public:
    static constexpr Duration kDefaultTimeout = std::chrono::seconds(10);
    static constexpr std::string_view kPrefix = "/api/v1/";

    // The socket is connected anew for every request; the client holds no connection.
    Client(reactor::Reactor& r, std::string socketPath, http::Limits limits = {});

    // Send `method /api/v1/<endpoint>` with `body` (JSON, may be empty) and `fds` (SCM_RIGHTS,
    // with the first bytes); the answer whatever its status. Errors: Unavailable when the socket
    // does not accept or the VMM closes the connection before a whole answer; Timeout when the
    // answer is not in within `timeout` (connecting included); ParseError/TooLarge for a
    // malformed answer.
    reactor::Task<Result<Response>> request(std::string method, std::string endpoint, std::string body = {},
                                            Duration timeout = kDefaultTimeout, std::vector<int> fds = {});

    // request() that also turns a non-2xx status into an error (statusError).
    reactor::Task<Result<Response>> call(std::string method, std::string endpoint, std::string body = {},
                                         Duration timeout = kDefaultTimeout, std::vector<int> fds = {});

    reactor::Task<Result<PingInfo>> ping(Duration timeout = kDefaultTimeout);
    reactor::Task<Result<VmInfo>> info(Duration timeout = kDefaultTimeout);
    // PUT of a verb without a body: "vm.boot", "vm.pause", "vm.shutdown", "vmm.shutdown"...
    reactor::Task<Result<void>> put(std::string endpoint, std::string body = {},
                                    Duration timeout = kDefaultTimeout, std::vector<int> fds = {});

    const std::string& socketPath() const noexcept { return path_; }

private:
    reactor::Reactor& reactor_;
    std::string path_;
    http::Limits limits_;
};

// The error for a non-2xx answer: "cloud-hypervisor answered PUT vm.pause with 500 Internal
// Server Error", caused by the server's chain (outermost first, each entry a cause of the one
// before). Kind: 400 InvalidArgument, 404 NotFound (no VM created), 409 Busy, 429 Busy,
// anything else Unavailable.
Error statusError(std::string_view method, std::string_view endpoint, const Response& r);

}  // namespace vmr::chv
