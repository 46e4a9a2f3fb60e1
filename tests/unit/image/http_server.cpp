#include "http_server.h"

#include "reactor/reactor.h"

#include <httplib.h>

#include <chrono>
#include <stdexcept>

namespace vmr::image::test {

using namespace std::chrono_literals;

TestCert makeSelfSignedCert(const std::string& dir)
{
    auto r = reactor::Reactor::create();
    if (!r) return {};
    TestCert c{dir + "/cert.pem", dir + "/key.pem"};
    reactor::SpawnOptions opts;
    opts.argv = {"openssl",
                 "req",
                 "-x509",
                 "-newkey",
                 "ec",
                 "-pkeyopt",
                 "ec_paramgen_curve:prime256v1",
                 "-nodes",
                 "-keyout",
                 c.keyPath,
                 "-out",
                 c.certPath,
                 "-days",
                 "1",
                 "-subj",
                 "/CN=127.0.0.1",
                 "-addext",
                 "subjectAltName=IP:127.0.0.1"};
    auto task = reactor::run(**r, std::move(opts), 30s);
    task.start();
    (*r)->runUntil([&] { return task.done(); }, 30s);
    if (!task.done()) return {};
    auto res = task.result();
    if (!res || !res->status.exited() || res->status.code != 0) return {};
    return c;
}

HttpServer::HttpServer(const TestCert* cert) : tls_(cert != nullptr)
{
    if (cert != nullptr)
        server_ = std::make_unique<httplib::SSLServer>(cert->certPath.c_str(), cert->keyPath.c_str());
    else
        server_ = std::make_unique<httplib::Server>();
    if (!server_->is_valid()) throw std::runtime_error("the test HTTP server cannot start (certificate?)");

    server_->Get(R"(/(\w+)/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
        std::string kind = req.matches[1];
        std::string name = req.matches[2];
        std::shared_ptr<const std::string> data;
        int count = 0;
        {
            std::lock_guard lock(mu_);
            count = ++requests_[req.path];
            if (req.has_header("Range")) ranges_.push_back(req.get_header_value("Range"));
            auto it = files_.find(name);
            if (it != files_.end()) data = it->second;
        }
        if (kind == "redirect") {
            res.set_redirect("/files/" + name, 302);
            return;
        }
        if (!data) {
            res.status = 404;
            res.set_content("no such file\n", "text/plain");
            return;
        }
        if (kind == "norange") const_cast<httplib::Request&>(req).ranges.clear();
        // Send bytes [offset, offset+length) of the answer, cut after half of it when `cut`.
        bool cut = kind == "truncated" || ((kind == "flaky" || kind == "norange") && count == 1);
        bool slow = kind == "slow";
        bool stall = kind == "stall";
        if (kind != "files" && kind != "truncated" && kind != "flaky" && kind != "norange" && !slow &&
            !stall) {
            res.status = 404;
            return;
        }
        auto limit = std::make_shared<std::optional<size_t>>();
        res.set_content_provider(
            data->size(), "application/octet-stream",
            [this, data, cut, slow, stall, limit](size_t offset, size_t length, httplib::DataSink& sink) {
                if (!*limit) *limit = (cut || stall) ? offset + length / 2 : offset + length;
                if (stall && offset >= **limit) {
                    // Keep the connection open and silent until the client gives up.
                    for (int i = 0; i < 600 && !stopping_ && sink.is_writable(); ++i)
                        std::this_thread::sleep_for(50ms);
                    return false;
                }
                if (offset >= **limit || stopping_) return false;
                size_t n = std::min({length, **limit - offset, size_t{slow ? 16384u : 65536u}});
                if (slow) std::this_thread::sleep_for(20ms);
                return sink.write(data->data() + offset, n);
            });
    });

    port_ = server_->bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("the test HTTP server cannot bind 127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    for (int i = 0; i < 500 && !server_->is_running(); ++i) std::this_thread::sleep_for(2ms);
}

HttpServer::~HttpServer()
{
    stopping_ = true;
    server_->stop();
    if (thread_.joinable()) thread_.join();
}

void HttpServer::addFile(const std::string& name, std::string content)
{
    std::lock_guard lock(mu_);
    files_[name] = std::make_shared<const std::string>(std::move(content));
}

std::string HttpServer::url(const std::string& kind, const std::string& name) const
{
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/" + kind + "/" +
           name;
}

int HttpServer::requests(const std::string& path) const
{
    std::lock_guard lock(mu_);
    auto it = requests_.find(path);
    return it == requests_.end() ? 0 : it->second;
}

std::vector<std::string> HttpServer::ranges() const
{
    std::lock_guard lock(mu_);
    return ranges_;
}

}  // namespace vmr::image::test
