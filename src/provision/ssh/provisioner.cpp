#include "provision/ssh/provisioner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <utility>

namespace vmr::provision {

using reactor::Task;

namespace {

std::string baseName(std::string_view path)
{
    auto slash = path.find_last_of('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string octal(uint32_t mode)
{
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
    return buf;
}

// provision.log: appended to as output arrives. Writes are small and go to the page cache.
class ProvisionLog {
public:
    static Result<ProvisionLog> open(const std::string& path)
    {
        ProvisionLog log;
        if (path.empty()) return log;
        log.fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
        if (!log.fd_) {
            return Error::fromErrno(errno, "Cannot open the provisioning log " + path,
                                    "Check that its folder exists and is writable");
        }
        return log;
    }

    void write(std::string_view data)
    {
        if (!fd_ || data.empty()) return;
        atLineStart_ = data.back() == '\n';
        while (!data.empty()) {
            ssize_t n = ::write(fd_.get(), data.data(), data.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;  // a full disk must not stop provisioning; the caller has the output
            data.remove_prefix(static_cast<size_t>(n));
        }
    }

    // A header or footer line, on a line of its own even after output without a final newline.
    void line(const std::string& text) { write((atLineStart_ ? "" : "\n") + text + "\n"); }

private:
    UniqueFd fd_;
    bool atLineStart_ = true;
};

}  // namespace

std::string describeStep(const ProvisionStep& step)
{
    if (const auto* s = std::get_if<ShellInline>(&step)) {
        std::string_view cmd = s->command;
        while (!cmd.empty() && (cmd.front() == '\n' || cmd.front() == ' ')) cmd.remove_prefix(1);
        auto nl = cmd.find('\n');
        std::string first(cmd.substr(0, nl));
        bool more =
            nl != std::string_view::npos && cmd.find_first_not_of(" \n", nl) != std::string_view::npos;
        if (first.size() > 60) {
            first = first.substr(0, 57);
            more = true;
        }
        return "shell inline: " + first + (more ? " ..." : "");
    }
    if (const auto* s = std::get_if<ShellScript>(&step)) return "shell script " + baseName(s->path);
    const auto& f = std::get<FileUpload>(step);
    return "file " + baseName(f.source) + " -> " + f.destination;
}

std::string remoteScriptPath(size_t step, std::string_view dir)
{
    return std::string(dir) + "/vmr-provision-" + std::to_string(step) + ".sh";
}

Task<Result<void>> runProvisioners(Session& session, std::vector<ProvisionStep> steps, ProvisionOptions opts)
{
    // Every local file is opened before the first step runs: a missing one fails the run
    // before anything changed on the guest, and a file cannot change between check and use.
    std::vector<UniqueFd> files(steps.size());
    for (size_t i = 0; i < steps.size(); ++i) {
        const auto& step = steps[i];
        const std::string* local = nullptr;
        if (const auto* sh = std::get_if<ShellInline>(&step); sh != nullptr && sh->command.empty()) {
            co_return Error(ErrorKind::InvalidArgument, "A shell step has an empty command",
                            "Give the commands to run, or remove the step");
        }
        if (const auto* script = std::get_if<ShellScript>(&step)) local = &script->path;
        if (const auto* f = std::get_if<FileUpload>(&step)) {
            if (f->destination.empty()) {
                co_return Error(ErrorKind::InvalidArgument,
                                "The file step for " + f->source + " has no destination",
                                "Give the path the file should have on the guest");
            }
            local = &f->source;
        }
        if (local == nullptr) continue;
        auto fd = opts.openLocal ? opts.openLocal(*local) : openLocalFile(*local);
        if (!fd) co_return std::move(fd).error();
        files[i] = std::move(*fd);
    }
    auto opened = ProvisionLog::open(opts.logPath);
    if (!opened) co_return std::move(opened).error();
    ProvisionLog log = std::move(*opened);

    const size_t total = steps.size();
    const std::string hint = "Fix the step and provision again" +
                             (opts.logPath.empty() ? "" : "; its output is in " + opts.logPath);
    // The footer of step n that failed, and which steps were left out.
    auto stopped = [&](size_t n, const std::string& outcome) {
        log.line("<== step " + std::to_string(n) + "/" + std::to_string(total) + ": " + outcome);
        if (n < total) {
            log.line("==> stopped: steps " + std::to_string(n + 1) + " to " + std::to_string(total) +
                     " were not run");
        }
    };
    log.line("==> provisioning " + session.target() + ": " + std::to_string(total) + " step" +
             (total == 1 ? "" : "s"));
    for (size_t i = 0; i < total; ++i) {
        const ProvisionStep& step = steps[i];
        const size_t n = i + 1;
        std::string label = "step " + std::to_string(n) + "/" + std::to_string(total);
        std::string description = describeStep(step);
        log.line("==> " + label + ": " + description);
        if (opts.onStep) opts.onStep(n, total, description);

        auto output = [&, n](OutputStream stream, std::string_view data) {
            log.write(data);
            if (opts.onOutput) opts.onOutput(n, stream, data);
        };

        std::optional<Error> failure;
        std::string outcome;
        std::string command;
        if (const auto* sh = std::get_if<ShellInline>(&step)) {
            command = sh->command;
        } else if (const auto* script = std::get_if<ShellScript>(&step)) {
            command = remoteScriptPath(n, opts.remoteScriptDir);
            auto up = co_await session.upload(std::move(files[i]), script->path, command, 0755u,
                                              opts.stepTimeout, opts.token);
            if (!up) failure = std::move(up).error();
        } else {
            const auto& f = std::get<FileUpload>(step);
            std::string dest = f.destination;
            if (dest.back() == '/') dest += baseName(f.source);
            struct stat st {};
            bool known = ::fstat(files[i].get(), &st) == 0;
            auto up = co_await session.upload(std::move(files[i]), f.source, dest, std::nullopt,
                                              opts.stepTimeout, opts.token);
            if (!up) {
                failure = std::move(up).error();
            } else {
                outcome = "uploaded";
                if (known) {
                    outcome += " " + std::to_string(st.st_size) + " bytes to " + dest + ", mode " +
                               octal(static_cast<uint32_t>(st.st_mode));
                }
            }
        }
        if (!failure && !command.empty()) {
            auto exit = co_await session.exec(command, output, opts.stepTimeout, opts.token);
            if (!exit) {
                failure = std::move(exit).error();
            } else {
                outcome = exit->describe();
                if (!exit->ok()) {
                    stopped(n, outcome + " (failed)");
                    co_return Error(ErrorKind::ProvisionFailed,
                                    "Provisioning " + label + " (" + description + ") failed with " + outcome,
                                    hint);
                }
            }
        }
        if (failure) {
            stopped(n, "failed: " + failure->what());
            ErrorKind kind =
                failure->kind() == ErrorKind::Cancelled ? ErrorKind::Cancelled : ErrorKind::ProvisionFailed;
            co_return Error(kind, "Provisioning " + label + " (" + description + ") failed", hint)
                .causedBy(std::move(*failure));
        }
        log.line("<== " + label + ": " + outcome);
    }
    log.line("==> provisioning done");
    co_return success();
}

}  // namespace vmr::provision
