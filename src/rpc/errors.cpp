#include "rpc/errors.h"

namespace vmr::rpc {

int errorCode(ErrorKind kind)
{
    // A switch without default: adding an ErrorKind without giving it a code fails to build.
    switch (kind) {
        case ErrorKind::ParseError: return kParseError;
        case ErrorKind::InvalidRequest: return kInvalidRequest;
        case ErrorKind::MethodNotFound: return kMethodNotFound;
        case ErrorKind::InvalidParams:
        case ErrorKind::InvalidArgument:
        case ErrorKind::InvalidName: return kInvalidParams;
        case ErrorKind::Internal:
        case ErrorKind::System: return kInternalError;
        case ErrorKind::Config: return -32001;
        case ErrorKind::NotFound: return -32002;
        case ErrorKind::VmNotFound: return -32003;
        case ErrorKind::VmExists: return -32004;
        case ErrorKind::VmBadState: return -32005;
        case ErrorKind::StoreCorrupt: return -32006;
        case ErrorKind::Timeout: return -32007;
        case ErrorKind::Cancelled: return -32008;
        case ErrorKind::Unsupported: return -32009;
        case ErrorKind::PermissionDenied: return -32010;
        case ErrorKind::Busy: return -32011;
        case ErrorKind::TooLarge: return -32012;
        case ErrorKind::Unavailable: return -32013;
        case ErrorKind::ImageNotFound: return -32014;
        case ErrorKind::ToolMissing: return -32015;
        case ErrorKind::ChecksumMismatch: return -32016;
        case ErrorKind::DownloadFailed: return -32017;
        case ErrorKind::HostKeyMismatch: return -32018;
        case ErrorKind::AuthFailed: return -32019;
        case ErrorKind::ProvisionFailed: return -32020;
        case ErrorKind::HypervisorError: return -32021;
        case ErrorKind::Count_: break;
    }
    return kInternalError;
}

ErrorKind kindFromCode(int code, std::string_view name)
{
    constexpr auto kCount = static_cast<int>(ErrorKind::Count_);
    if (!name.empty()) {
        for (int i = 0; i < kCount; ++i) {
            auto k = static_cast<ErrorKind>(i);
            if (kindName(k) == name) return k;
        }
    }
    switch (code) {
        case kParseError: return ErrorKind::ParseError;
        case kInvalidRequest: return ErrorKind::InvalidRequest;
        case kMethodNotFound: return ErrorKind::MethodNotFound;
        case kInvalidParams: return ErrorKind::InvalidParams;
        case kInternalError: return ErrorKind::Internal;
        default: break;
    }
    // Each remaining kind owns its code: search the table rather than repeat it.
    for (int i = 0; i < kCount; ++i) {
        auto k = static_cast<ErrorKind>(i);
        if (errorCode(k) == code) return k;
    }
    return ErrorKind::Internal;
}

std::string defaultHint(ErrorKind kind)
{
    switch (kind) {
        case ErrorKind::Internal: return "This is a bug in vmr; please report it with the vmrd log";
        case ErrorKind::System: return "See the vmrd log for details";
        case ErrorKind::InvalidArgument: return "Check the value and try again";
        case ErrorKind::ParseError: return "Send one JSON-RPC 2.0 message per line, as valid JSON";
        case ErrorKind::InvalidRequest:
            return "A request is {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"...\",\"params\":{...}} on one "
                   "line";
        case ErrorKind::MethodNotFound:
            return "Run `vmrctl rpc vmr.methods` to list the methods this vmrd knows";
        case ErrorKind::InvalidParams: return "See docs/protocol.md for the parameters of each method";
        case ErrorKind::Config: return "Fix the configuration file named in the message";
        case ErrorKind::NotFound: return "Check the name or path";
        case ErrorKind::VmNotFound: return "Run `vmrctl list` to see VMs";
        case ErrorKind::VmExists: return "Choose another name, or delete the existing VM first";
        case ErrorKind::VmBadState: return "Run `vmrctl list` to see the state of each VM";
        case ErrorKind::InvalidName:
            return "A name is 1 to 63 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit";
        case ErrorKind::StoreCorrupt: return "The vmrd log names the damaged file; repair or remove it";
        case ErrorKind::Timeout: return "Try again, or allow more time";
        case ErrorKind::Cancelled: return "Run the command again if it is still wanted";
        case ErrorKind::Unsupported: return "This vmrd was built or configured without this feature";
        case ErrorKind::PermissionDenied:
            return "Check file permissions, and that you are in the group that owns the vmrd socket";
        case ErrorKind::Busy: return "Another operation is in progress; try again when it finishes";
        case ErrorKind::TooLarge: return "Send less at once: a request line is limited to 1 MiB";
        case ErrorKind::Unavailable: return "Check that vmrd is running";
        case ErrorKind::ImageNotFound:
            return "Give the path of an image file, or pull one with `vmrctl image pull URL`";
        case ErrorKind::ToolMissing:
            return "Install the program named in the message, or set its path in vmrd.toml";
        case ErrorKind::ChecksumMismatch: return "Check the expected checksum; nothing was kept";
        case ErrorKind::DownloadFailed: return "See the message for the URL and the cause; nothing was kept";
        case ErrorKind::HostKeyMismatch:
            return "The guest's host key changed: if the guest was not reinstalled, someone may be "
                   "intercepting the connection";
        case ErrorKind::AuthFailed:
            return "Pass the right key with --key, or check the guest's authorized keys";
        case ErrorKind::ProvisionFailed: return "See the step's output and provision.log";
        case ErrorKind::HypervisorError: return "See the message for the hypervisor's own error";
        case ErrorKind::Count_: break;
    }
    return {};
}

std::string_view defaultMessage(ErrorKind kind)
{
    switch (kind) {
        case ErrorKind::Internal: return "Internal error";
        case ErrorKind::System: return "System error";
        case ErrorKind::InvalidArgument: return "Invalid argument";
        case ErrorKind::ParseError: return "Parse error";
        case ErrorKind::InvalidRequest: return "Invalid request";
        case ErrorKind::MethodNotFound: return "Method not found";
        case ErrorKind::InvalidParams: return "Invalid params";
        case ErrorKind::Config: return "Configuration error";
        case ErrorKind::NotFound: return "Not found";
        case ErrorKind::VmNotFound: return "VM not found";
        case ErrorKind::VmExists: return "VM already exists";
        case ErrorKind::VmBadState: return "VM is not in a state that allows this";
        case ErrorKind::InvalidName: return "Invalid name";
        case ErrorKind::StoreCorrupt: return "Stored state is corrupt";
        case ErrorKind::Timeout: return "Timed out";
        case ErrorKind::Cancelled: return "Cancelled";
        case ErrorKind::Unsupported: return "Unsupported";
        case ErrorKind::PermissionDenied: return "Permission denied";
        case ErrorKind::Busy: return "Busy";
        case ErrorKind::TooLarge: return "Too large";
        case ErrorKind::Unavailable: return "Unavailable";
        case ErrorKind::ImageNotFound: return "Image not found";
        case ErrorKind::ToolMissing: return "Program not installed";
        case ErrorKind::ChecksumMismatch: return "Checksum mismatch";
        case ErrorKind::DownloadFailed: return "Download failed";
        case ErrorKind::HostKeyMismatch: return "SSH host key mismatch";
        case ErrorKind::AuthFailed: return "SSH authentication failed";
        case ErrorKind::ProvisionFailed: return "Provisioning failed";
        case ErrorKind::HypervisorError: return "Hypervisor error";
        case ErrorKind::Count_: break;
    }
    return "Internal error";
}

}  // namespace vmr::rpc
