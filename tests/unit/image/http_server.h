#pragma once

// A loopback HTTP or HTTPS server for the image tests (cpp-httplib, in its own thread). It
// serves the files it is given under several behaviours, chosen by the first path segment:
//   /files/NAME      the file (Range requests honoured)
//   /truncated/NAME  announces the whole length, sends half of what was asked, then closes
//   /flaky/NAME      the first request is cut after half; later ones are served (with Range)
//   /norange/NAME    like flaky, but Range is ignored: every answer is the whole file (200)
//   /slow/NAME       16 KiB every 20 ms
//   /stall/NAME      sends half of what was asked, then nothing (the connection stays open)
//   /redirect/NAME   302 to /files/NAME
// Anything else is 404. It counts requests per path and remembers the Range headers it saw.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace vmr::image::test {

// A self-signed certificate for 127.0.0.1, made with the openssl program into `dir`.
struct TestCert {
    std::string certPath;
    std::string keyPath;
};
// Empty paths when openssl is missing (the caller skips what needs HTTPS).
TestCert makeSelfSignedCert(const std::string& dir);

class HttpServer {
public:
    // tls: serve HTTPS with `cert`.
    explicit HttpServer(const TestCert* cert = nullptr);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    void addFile(const std::string& name, std::string content);
    // "http://127.0.0.1:PORT/<kind>/<name>"
    std::string url(const std::string& kind, const std::string& name) const;
    int port() const { return port_; }

    int requests(const std::string& path) const;
    std::vector<std::string> ranges() const;  // every Range header received, in order

private:
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    int port_ = 0;
    bool tls_ = false;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<const std::string>> files_;
    std::map<std::string, int> requests_;
    std::vector<std::string> ranges_;
};

}  // namespace vmr::image::test
