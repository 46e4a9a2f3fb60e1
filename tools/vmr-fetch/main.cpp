// vmr-fetch: downloads one URL into one file for vmrd's image cache, in its own process so
// that the daemon's loop never waits on the network or the disk (DESIGN.md, Processes).
//
// It streams the body into --output (which must not exist), decompresses zstd on the fly,
// computes SHA-256, resumes with a Range request when a connection drops, and reports on
// stdout, one JSON object per line (the events of src/image/fetch.h, docs/images.md). The
// output file exists after exit only when the download is complete and verified: on every
// failure, and on SIGTERM/SIGINT/SIGHUP, it is removed.
//
// Exit status: 0 done, 1 failed (an "error" event says why), 2 usage.

#include "base/error.h"
#include "image/fetch_codec.h"

#include <httplib.h>
#include <zstd.h>

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using vmr::Error;
using vmr::ErrorKind;
using vmr::image::FetchEvent;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage = R"(Usage: vmr-fetch --url URL --output FILE [OPTIONS]

Download URL into FILE (which must not exist), reporting progress as JSON lines on stdout.
FILE exists afterwards only if the download completed and was verified.

Options:
  --sha256 HEX              Expected SHA-256 of the file as served (before decompression)
  --decompress auto|zstd|none
                            auto (default): zstd when the URL path ends in .zst or .zstd
  --connect-timeout S       Seconds to wait for a connection (default 30)
  --read-timeout S          Seconds without data before a download fails (default 60)
  --retries N               Resumed attempts after a dropped connection (default 3)
  --ca-file PEM             Also trust the CA certificates in PEM (HTTPS)
  --progress-interval MS    Least time between progress lines (default 200)
  -h, --help                Show this help
)";

// The output path, for the signal handler (which may only make async-signal-safe calls).
char gOutput[4096];

void onSignal(int)
{
    if (gOutput[0] != '\0') ::unlink(gOutput);
    ::_exit(1);
}

struct Options {
    std::string url;
    std::string output;
    std::optional<std::string> sha256;
    vmr::image::Decompress decompress = vmr::image::Decompress::Auto;
    long connectTimeout = 30;
    long readTimeout = 60;
    unsigned retries = 3;
    std::string caFile;
    long progressMs = 200;
};

void emit(const FetchEvent& e)
{
    std::string line = vmr::image::encodeFetchEvent(e);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

int usage(const std::string& message)
{
    std::fprintf(stderr, "vmr-fetch: %s\nRun `vmr-fetch --help` for usage.\n", message.c_str());
    return 2;
}

std::optional<long> number(const std::string& s, long min, long max)
{
    long n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p != s.data() + s.size() || n < min || n > max) return std::nullopt;
    return n;
}

class Sha256 {
public:
    Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) { reset(); }
    void reset() { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
    void update(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
    std::string hex()
    {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        EVP_DigestFinal_ex(ctx_.get(), md, &len);
        static constexpr char kDigits[] = "0123456789abcdef";
        std::string out;
        for (unsigned i = 0; i < len; ++i) {
            out += kDigits[md[i] >> 4];
            out += kDigits[md[i] & 15];
        }
        return out;
    }

private:
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

// One download: the output file, the hashes, the zstd decoder and the byte counts, kept
// across resumed attempts.
class Download {
public:
    explicit Download(Options opt) : opt_(std::move(opt)) {}

    int run()
    {
        auto url = vmr::image::parseUrl(opt_.url);
        if (!url) return fail(std::move(url).error());
        url_ = std::move(*url);
        zstd_ = vmr::image::wantsZstd(opt_.decompress, url_);

        fd_ = ::open(opt_.output.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd_ < 0) {
            int err = errno;
            if (err == EEXIST)
                return failKeep(Error(ErrorKind::InvalidArgument, opt_.output + " already exists",
                                      "vmr-fetch never overwrites a file: remove it first"));
            return failKeep(Error::fromErrno(err, "Cannot create " + opt_.output));
        }
        std::snprintf(gOutput, sizeof gOutput, "%s", opt_.output.c_str());
        if (zstd_) {
            dstream_.reset(ZSTD_createDStream());
            ZSTD_initDStream(dstream_.get());
        }

        try {
            return transfer();
        } catch (const std::exception& e) {
            return fail(Error(ErrorKind::DownloadFailed, "Download of " + opt_.url + " failed: " + e.what()));
        }
    }

private:
    int transfer()
    {
        httplib::Client cli(url_.scheme + "://" + url_.hostPort);
        cli.set_connection_timeout(opt_.connectTimeout);
        cli.set_read_timeout(opt_.readTimeout);
        cli.set_write_timeout(opt_.readTimeout);
        cli.set_follow_location(true);
        cli.set_decompress(false);
        cli.set_keep_alive(false);
        if (!opt_.caFile.empty()) cli.set_ca_cert_path(opt_.caFile.c_str());
        cli.enable_server_certificate_verification(true);

        for (unsigned attempt = 0;; ++attempt) {
            fatal_.reset();
            httplib::Headers headers = {{"Accept-Encoding", "identity"}, {"User-Agent", "vmr-fetch/0.1"}};
            uint64_t offset = received_;
            if (offset > 0) headers.emplace("Range", "bytes=" + std::to_string(offset) + "-");
            auto res = cli.Get(
                url_.path, headers, [&](const httplib::Response& r) { return onResponse(r, offset); },
                [&](const char* data, size_t n) { return onData(data, n); });
            if (fatal_) return fail(std::move(*fatal_));
            std::string why;
            if (res) {
                if (total_ && received_ < *total_) {
                    why = "the server sent " + std::to_string(received_) + " of " + std::to_string(*total_) +
                          " bytes";
                } else {
                    if (!res->location.empty()) finalUrl_ = res->location;
                    return finish();
                }
            } else {
                auto err = res.error();
                bool started = received_ > 0;
                if (err == httplib::Error::Read || err == httplib::Error::Write ||
                    (started && err != httplib::Error::Canceled)) {
                    why = "the connection broke after " + std::to_string(received_) + " bytes (" +
                          httplib::to_string(err) + ")";
                } else {
                    return fail(describe(err, cli));
                }
            }
            if (attempt >= opt_.retries)
                return fail(Error(ErrorKind::DownloadFailed, "Download of " + opt_.url + " failed: " + why,
                                  "Try again later; nothing was kept"));
            FetchEvent e;
            e.type = FetchEvent::Type::Retry;
            e.offset = received_;
            e.reason = why;
            emit(e);
            std::this_thread::sleep_for(std::chrono::milliseconds(250) * (1 << attempt));
        }
    }

    Error describe(httplib::Error err, httplib::Client& cli)
    {
        std::string where = url_.hostPort;
        switch (err) {
            case httplib::Error::Connection:
                return Error(ErrorKind::DownloadFailed, "Cannot connect to " + where + " for " + opt_.url,
                             "Check the URL, and that the host is reachable");
            case httplib::Error::ConnectionTimeout:
                return Error(
                    ErrorKind::Timeout,
                    "No connection to " + where + " within " + std::to_string(opt_.connectTimeout) + " s",
                    "Check the URL, and that the host is reachable");
            case httplib::Error::SSLConnection:
                return Error(ErrorKind::DownloadFailed, "TLS handshake with " + where + " failed",
                             "Check that the URL's scheme matches the server (http or https)");
            case httplib::Error::SSLServerVerification:
                return Error(ErrorKind::DownloadFailed,
                             "The certificate of " + where + " is not trusted (" +
                                 X509_verify_cert_error_string(cli.get_openssl_verify_result()) + ")",
                             "Install its CA certificate in the system store, or give it with --ca-file");
            case httplib::Error::SSLLoadingCerts:
                return Error(
                    ErrorKind::DownloadFailed,
                    "Cannot load CA certificates" + (opt_.caFile.empty() ? "" : " from " + opt_.caFile),
                    "Check that the file is PEM");
            case httplib::Error::ExceedRedirectCount:
                return Error(ErrorKind::DownloadFailed, "Too many redirects for " + opt_.url,
                             "Check the URL; the server redirects in a loop");
            default:
                return Error(ErrorKind::DownloadFailed,
                             "Download of " + opt_.url + " failed: " + httplib::to_string(err));
        }
    }

    bool onResponse(const httplib::Response& r, uint64_t offset)
    {
        std::optional<uint64_t> length;
        if (r.has_header("Content-Length")) {
            const std::string v = r.get_header_value("Content-Length");
            uint64_t n = 0;
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec == std::errc() && p == v.data() + v.size()) length = n;
        }
        if (r.status == 206 && offset > 0) {
            // "bytes START-END/TOTAL": the range must start where we are.
            const std::string v = r.get_header_value("Content-Range");
            uint64_t start = 0;
            size_t sp = v.find(' ');
            auto [p, ec] = std::from_chars(v.data() + (sp == std::string::npos ? 0 : sp + 1),
                                           v.data() + v.size(), start);
            if (ec != std::errc() || start != offset) {
                fatal_ = Error(ErrorKind::DownloadFailed,
                               "The server answered a resumed download of " + opt_.url + " with the range `" +
                                   v + "`, not bytes " + std::to_string(offset) + "-",
                               "Try again; nothing was kept");
                return false;
            }
            size_t slash = v.find('/');
            uint64_t whole = 0;
            if (slash != std::string::npos &&
                std::from_chars(v.data() + slash + 1, v.data() + v.size(), whole).ec == std::errc())
                total_ = whole;
            else if (length)
                total_ = offset + *length;
        } else if (r.status == 200) {
            if (offset > 0 && !restart()) return false;
            total_ = length;
        } else {
            fatal_ = httpError(r.status);
            return false;
        }
        if (total_ && !zstd_ && *total_ > received_) reserve(*total_);
        if (fatal_) return false;
        FetchEvent e;
        e.type = FetchEvent::Type::Start;
        e.url = opt_.url;
        e.offset = received_;
        e.total = total_;
        emit(e);
        return true;
    }

    Error httpError(int status)
    {
        std::string what = "The server answered " + opt_.url + " with HTTP " + std::to_string(status);
        if (status == 404 || status == 410)
            return Error(ErrorKind::NotFound,
                         "There is no file at " + opt_.url + " (HTTP " + std::to_string(status) + ")",
                         "Check the URL");
        if (status == 401 || status == 403)
            return Error(ErrorKind::PermissionDenied, what, "The server refuses the download; check the URL");
        if (status >= 300 && status < 400)
            return Error(ErrorKind::DownloadFailed, what + " without a usable Location", "Check the URL");
        if (status >= 500)
            return Error(ErrorKind::DownloadFailed, what, "The server has a problem; try again later");
        return Error(ErrorKind::DownloadFailed, what, "Check the URL");
    }

    // The server ignored our Range: start over from byte 0.
    bool restart()
    {
        if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) {
            fatal_ = Error::fromErrno(errno, "Cannot truncate " + opt_.output);
            return false;
        }
        received_ = written_ = 0;
        wire_.reset();
        file_.reset();
        if (zstd_) ZSTD_initDStream(dstream_.get());
        frameDone_ = false;
        return true;
    }

    // Claim the disk space up front, so that a full disk fails now rather than at the end.
    void reserve(uint64_t total)
    {
        if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(total)) == 0) return;
        if (errno == ENOSPC)
            fatal_ = Error(ErrorKind::DownloadFailed,
                           "Not enough disk space for " + opt_.url + " (" + std::to_string(total) +
                               " bytes) in " + opt_.output,
                           "Free some space, or remove images with `vmrctl image rm`; nothing was kept");
        // Other errors (EOPNOTSUPP on some file systems): write as usual.
    }

    bool onData(const char* data, size_t n)
    {
        wire_.update(data, n);
        received_ += n;
        bool ok = zstd_ ? decompress(data, n) : write(data, n);
        if (!ok) return false;
        auto now = Clock::now();
        if (now - lastProgress_ >= std::chrono::milliseconds(opt_.progressMs)) {
            lastProgress_ = now;
            progress();
        }
        return true;
    }

    void progress()
    {
        FetchEvent e;
        e.type = FetchEvent::Type::Progress;
        e.received = received_;
        e.total = total_;
        e.written = written_;
        emit(e);
    }

    bool decompress(const char* data, size_t n)
    {
        ZSTD_inBuffer in{data, n, 0};
        std::vector<char>& out = zbuf_;
        if (out.empty()) out.resize(ZSTD_DStreamOutSize());
        while (in.pos < in.size) {
            ZSTD_outBuffer o{out.data(), out.size(), 0};
            size_t rc = ZSTD_decompressStream(dstream_.get(), &o, &in);
            if (ZSTD_isError(rc)) {
                fatal_ = Error(ErrorKind::DownloadFailed,
                               "Cannot decompress " + opt_.url + ": " + ZSTD_getErrorName(rc),
                               "The URL ends in .zst but the file is not zstd-compressed; check the URL");
                return false;
            }
            frameDone_ = rc == 0;
            if (o.pos > 0 && !write(out.data(), o.pos)) return false;
        }
        return true;
    }

    bool write(const char* data, size_t n)
    {
        file_.update(data, n);
        while (n > 0) {
            ssize_t w = ::write(fd_, data, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                int err = errno;
                fatal_ =
                    Error::fromErrno(err, "Cannot write " + opt_.output,
                                     err == ENOSPC ? "Free some space, or remove images with `vmrctl image "
                                                     "rm`; nothing was kept"
                                                   : "Nothing was kept");
                return false;
            }
            data += w;
            n -= static_cast<size_t>(w);
            written_ += static_cast<uint64_t>(w);
        }
        return true;
    }

    int finish()
    {
        if (zstd_ && !frameDone_)
            return fail(Error(ErrorKind::DownloadFailed,
                              "The zstd data of " + opt_.url + " ends in the middle of a frame",
                              "The file on the server is truncated; try again later"));
        if (::fsync(fd_) != 0) return fail(Error::fromErrno(errno, "Cannot write " + opt_.output));
        int fd = fd_;
        fd_ = -1;
        if (::close(fd) != 0) return fail(Error::fromErrno(errno, "Cannot write " + opt_.output));
        std::string wireSha = wire_.hex();
        std::string fileSha = zstd_ ? file_.hex() : wireSha;
        if (opt_.sha256 && *opt_.sha256 != wireSha)
            return fail(Error(ErrorKind::ChecksumMismatch,
                              "Download of " + opt_.url + " has SHA-256 " + wireSha + ", not " + *opt_.sha256,
                              "Check the expected checksum; nothing was kept"));
        progress();
        FetchEvent e;
        e.type = FetchEvent::Type::Done;
        e.url = finalUrl_.empty() ? opt_.url : finalUrl_;
        e.written = written_;
        e.received = received_;
        e.sha256 = fileSha;
        e.downloadSha256 = wireSha;
        e.compression = zstd_ ? "zstd" : "none";
        emit(e);
        gOutput[0] = '\0';
        return 0;
    }

    // Remove the output and report.
    int fail(Error err)
    {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        if (!opt_.output.empty() && gOutput[0] != '\0') ::unlink(opt_.output.c_str());
        gOutput[0] = '\0';
        return failKeep(std::move(err));
    }

    // Report without touching the output (it is not ours).
    static int failKeep(Error err)
    {
        FetchEvent e;
        e.type = FetchEvent::Type::Error;
        e.errorKind = err.kind();
        e.message = err.what();
        e.hint = err.hint();
        emit(e);
        return 1;
    }

    Options opt_;
    vmr::image::Url url_;
    bool zstd_ = false;
    int fd_ = -1;
    std::unique_ptr<ZSTD_DStream, size_t (*)(ZSTD_DStream*)> dstream_{nullptr, ZSTD_freeDStream};
    std::vector<char> zbuf_;
    bool frameDone_ = false;
    Sha256 wire_;  // the bytes as served
    Sha256 file_;  // the bytes written
    uint64_t received_ = 0;
    uint64_t written_ = 0;
    std::optional<uint64_t> total_;
    std::optional<Error> fatal_;  // set by a callback that stopped the transfer
    std::string finalUrl_;
    Clock::time_point lastProgress_{};
};

}  // namespace

int main(int argc, char** argv)
{
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGXFSZ, SIG_IGN);  // a file-size limit is a write error, not a crash
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(s, &sa, nullptr);

    Options opt;
    std::vector<std::string> args(argv + 1, argv + argc);
    for (size_t i = 0; i < args.size(); ++i) {
        std::string a = args[i];
        if (a == "-h" || a == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        std::string value;
        if (size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
        } else if (a.rfind("--", 0) == 0) {
            if (i + 1 >= args.size()) return usage(a + " needs a value");
            value = args[++i];
        } else {
            return usage("unexpected argument `" + a + "`");
        }
        if (a == "--url") {
            opt.url = value;
        } else if (a == "--output") {
            opt.output = value;
        } else if (a == "--sha256") {
            auto s = vmr::image::normalizeSha256(value);
            if (!s) return usage(s.error().message());
            opt.sha256 = *s;
        } else if (a == "--decompress") {
            auto d = vmr::image::parseDecompress(value);
            if (!d) return usage(d.error().message() + ": " + d.error().hint());
            opt.decompress = *d;
        } else if (a == "--connect-timeout" || a == "--read-timeout") {
            auto n = number(value, 1, 86400);
            if (!n)
                return usage(a + " must be a whole number of seconds from 1 to 86400, not `" + value + "`");
            (a == "--connect-timeout" ? opt.connectTimeout : opt.readTimeout) = *n;
        } else if (a == "--retries") {
            auto n = number(value, 0, 20);
            if (!n) return usage("--retries must be a whole number from 0 to 20, not `" + value + "`");
            opt.retries = static_cast<unsigned>(*n);
        } else if (a == "--ca-file") {
            opt.caFile = value;
        } else if (a == "--progress-interval") {
            auto n = number(value, 0, 60000);
            if (!n)
                return usage("--progress-interval must be milliseconds from 0 to 60000, not `" + value + "`");
            opt.progressMs = *n;
        } else {
            return usage("unknown option `" + a + "`");
        }
    }
    if (opt.url.empty()) return usage("--url is required");
    if (opt.output.empty()) return usage("--output is required");
    Download d(std::move(opt));
    return d.run();
}
