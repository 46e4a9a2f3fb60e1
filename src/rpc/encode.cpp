// The encoders of protocol.h: each message is built in one string, the raw JSON it is given
// copied in as it is.

#include "base/json.h"
#include "rpc/errors.h"
#include "rpc/protocol.h"

namespace vmr::rpc {

namespace {

constexpr std::string_view kJsonrpc = R"({"jsonrpc":"2.0")";

}  // namespace

std::string encodeResult(const Id& id, std::string_view resultJson)
{
    if (resultJson.empty()) resultJson = "null";
    std::string out;
    out.reserve(kJsonrpc.size() + id.json.size() + resultJson.size() + 16);
    out += kJsonrpc;
    out += R"(,"id":)";
    out += id.json;
    out += R"(,"result":)";
    out += resultJson;
    out += '}';
    return out;
}

std::string encodeError(const Id& id, const Error& err)
{
    std::string_view message = err.message();
    if (message.empty()) message = defaultMessage(err.kind());
    std::string hint = err.hint().empty() ? defaultHint(err.kind()) : err.hint();
    // The cause chain and errno text, as what() prints them after the message.
    std::string cause = err.what();
    if (cause.size() >= err.message().size()) cause.erase(0, err.message().size());
    if (cause.starts_with(": ")) cause.erase(0, 2);

    std::string out;
    out.reserve(128 + message.size() + hint.size() + cause.size());
    out += kJsonrpc;
    out += R"(,"id":)";
    out += id.json;
    out += R"(,"error":{"code":)";
    out += std::to_string(errorCode(err.kind()));
    out += R"(,"message":)";
    json::appendString(out, message);
    out += R"(,"data":{"kind":)";
    json::appendString(out, err.kindName());
    if (!hint.empty()) {
        out += R"(,"hint":)";
        json::appendString(out, hint);
    }
    if (!cause.empty()) {
        out += R"(,"cause":)";
        json::appendString(out, cause);
    }
    out += "}}}";
    return out;
}

std::string encodeRequest(const Id& id, std::string_view method, std::string_view paramsJson)
{
    std::string out;
    out.reserve(kJsonrpc.size() + id.json.size() + method.size() + paramsJson.size() + 32);
    out += kJsonrpc;
    if (id.present()) {
        out += R"(,"id":)";
        out += id.json;
    }
    out += R"(,"method":)";
    json::appendString(out, method);
    if (!paramsJson.empty()) {
        out += R"(,"params":)";
        out += paramsJson;
    }
    out += '}';
    return out;
}

std::string encodeNotification(std::string_view method, std::string_view paramsJson)
{
    return encodeRequest(Id::none(), method, paramsJson);
}

}  // namespace vmr::rpc
