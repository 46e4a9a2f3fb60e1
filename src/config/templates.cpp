#include "config/templates.h"

#include "base/json.h"
#include "base/suggest.h"
#include "model/spec.h"

#include <simdjson.h>
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

namespace vmr::config {

namespace {

namespace fs = std::filesystem;

Error templateError(const std::string& path, const toml::source_region& at, const std::string& what,
                    std::string hint = {})
{
    return Error(
        ErrorKind::Config,
        path + ":" + std::to_string(at.begin.line) + ":" + std::to_string(at.begin.column) + ": " + what,
        hint.empty() ? "Fix the template (docs/templates.md lists its keys)" : std::move(hint));
}

// A template's keys are the VMFile's (model::FieldInfo::kdl) at the top level; each becomes
// its field's vm.create param.
const model::FieldInfo* topLevelField(std::string_view key)
{
    for (const auto& f : model::fields())
        if (!f.kdl.empty() && f.kdl == key && f.kdl.find('.') == std::string_view::npos) return &f;
    return nullptr;
}
constexpr const char* kTables[] = {"cloud-init", "ssh", "provision"};

std::string absoluteFrom(const std::string& dir, const std::string& path)
{
    if (!path.empty() && path[0] == '/') return path;
    return (fs::path(dir) / path).lexically_normal().string();
}

Result<std::string> readText(const std::string& path, const std::string& what)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Error(ErrorKind::NotFound, "Template: cannot read the " + what + " " + path, "Check the path");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string_view> knownNames()
{
    std::vector<std::string_view> names;
    for (const auto& f : model::fields())
        if (!f.kdl.empty() && f.kdl.find('.') == std::string_view::npos) names.push_back(f.kdl);
    for (const char* t : kTables) names.emplace_back(t);
    return names;
}

Result<std::string> toParams(const toml::table& t, const std::string& path)
{
    const std::string dir = fs::path(path).parent_path().string();
    json::Writer w;
    w.beginObject();
    for (const auto& [k, node] : t) {
        std::string key(k.str());
        if (const model::FieldInfo* f = topLevelField(key)) {
            if (f->type == model::FieldType::Integer) {
                auto v = node.value<int64_t>();
                if (!v) return templateError(path, node.source(), "\"" + key + "\" must be a whole number");
                auto checked = model::checkInteger(f->id, *v);
                if (!checked)
                    return templateError(path, node.source(), "\"" + key + "\" " + checked.error().message());
                w.field(f->wire, *checked);
            } else if (f->type == model::FieldType::Boolean) {
                auto v = node.value<bool>();
                if (!v) return templateError(path, node.source(), "\"" + key + "\" must be true or false");
                w.field(f->wire, *v);
            } else {
                auto v = node.value<std::string>();
                if (!v || v->empty())
                    return templateError(path, node.source(), "\"" + key + "\" must be a non-empty string");
                w.field(f->wire, f->type == model::FieldType::Path ? absoluteFrom(dir, *v) : *v);
            }
            continue;
        }
        if (key == "cloud-init" || key == "ssh") {
            const auto* sub = node.as_table();
            if (sub == nullptr) return templateError(path, node.source(), "\"" + key + "\" must be a table");
            for (const auto& [sk, sn] : *sub) {
                std::string skey(sk.str());
                auto v = sn.value<std::string>();
                if (!v || v->empty())
                    return templateError(path, sn.source(),
                                         "\"" + key + "." + skey + "\" must be a non-empty string");
                if (key == "ssh" && skey == "user") {
                    w.field("ssh_user", *v);
                } else if (key == "cloud-init" && skey == "hostname") {
                    w.field("hostname", *v);
                } else if (key == "cloud-init" && skey == "ssh-key") {
                    auto text = readText(absoluteFrom(dir, *v), "public key");
                    if (!text) return std::move(text).error();
                    std::string line = *text;
                    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
                    w.key("ssh_authorized_keys").beginArray().value(line).endArray();
                } else if (key == "cloud-init" && skey == "user-data") {
                    auto text = readText(absoluteFrom(dir, *v), "user-data");
                    if (!text) return std::move(text).error();
                    w.field("user_data", *text);
                } else {
                    return templateError(path, sk.source(), "unknown key \"" + key + "." + skey + "\"",
                                         key == "ssh" ? "[ssh] takes user"
                                                      : "[cloud-init] takes hostname, ssh-key, user-data");
                }
            }
            continue;
        }
        if (key == "provision") {
            const auto* arr = node.as_array();
            if (arr == nullptr)
                return templateError(path, node.source(),
                                     "\"provision\" must be an array of tables ([[provision]])");
            w.key("provision").beginArray();
            for (const auto& step : *arr) {
                const auto* st = step.as_table();
                if (st == nullptr)
                    return templateError(path, step.source(), "a provision step must be a table");
                w.beginObject();
                for (const auto& [sk, sn] : *st) {
                    std::string skey(sk.str());
                    auto v = sn.value<std::string>();
                    if (!v)
                        return templateError(path, sn.source(),
                                             "provision \"" + skey + "\" must be a string");
                    bool isPath = skey == "script" || skey == "source";
                    w.field(skey, isPath ? absoluteFrom(dir, *v) : *v);
                }
                w.endObject();
            }
            w.endArray();
            continue;
        }
        std::string hint =
            "Known keys: image, image-url, vcpus, memory, disk, network, backend, kernel, initrd, "
            "cmdline, accel, firmware, vnc, [cloud-init], [ssh], [[provision]]";
        auto names = knownNames();
        if (auto m = closestMatch(key, names)) hint = "Did you mean \"" + *m + "\"?";
        return templateError(path, k.source(), "unknown key \"" + key + "\"", hint);
    }
    w.endObject();
    return w.take();
}

Result<Template> readTemplate(const std::string& path, std::string name)
{
    toml::table t;
    try {
        t = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return templateError(path, e.source(), std::string(e.description()));
    }
    auto params = toParams(t, path);
    if (!params) return std::move(params).error();
    return Template{std::move(name), path, *params};
}

}  // namespace

std::string templatesDir(const std::string& configPath)
{
    return (fs::path(configPath).parent_path() / "templates").string();
}

Result<Template> loadTemplate(const std::string& dir, std::string_view name)
{
    std::string path = dir + "/" + std::string(name) + ".toml";
    std::error_code ec;
    if (name.empty() || name.find('/') != std::string_view::npos || !fs::is_regular_file(path, ec)) {
        std::string have;
        auto all = loadTemplates(dir);
        if (all)
            for (const auto& t : *all) have += (have.empty() ? "" : ", ") + t.name;
        return Error(ErrorKind::NotFound, "No template named \"" + std::string(name) + "\" in " + dir,
                     have.empty() ? "Write one as " + dir + "/NAME.toml (docs/templates.md)"
                                  : "Templates there: " + have);
    }
    return readTemplate(path, std::string(name));
}

Result<std::vector<Template>> loadTemplates(const std::string& dir)
{
    std::vector<Template> out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return out;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.path().extension() == ".toml" && e.is_regular_file(ec))
            names.push_back(e.path().stem().string());
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
        auto t = readTemplate(dir + "/" + n + ".toml", n);
        if (!t) return std::move(t).error();
        out.push_back(std::move(*t));
    }
    return out;
}

Result<std::string> mergeParams(std::string_view templ, std::string_view request)
{
    simdjson::dom::parser p1, p2;
    simdjson::padded_string a(templ), b(request);
    simdjson::dom::object t, r;
    if (p1.parse(a).get_object().get(t) != simdjson::SUCCESS ||
        p2.parse(b).get_object().get(r) != simdjson::SUCCESS)
        return Error(ErrorKind::InvalidParams, "Template and request params must be JSON objects");
    std::set<std::string, std::less<>> given;
    json::Writer w;
    w.beginObject();
    for (auto [k, v] : r) {
        given.emplace(k);
        w.key(k).raw(simdjson::to_string(v));
    }
    for (auto [k, v] : t) {
        if (given.count(k) != 0) continue;
        // A request naming an image source replaces the template's whole image source.
        if ((k == "image" || k == "image_url" || k == "image_sha256") &&
            (given.count("image") != 0 || given.count("image_url") != 0))
            continue;
        w.key(k).raw(simdjson::to_string(v));
    }
    w.endObject();
    return w.take();
}

}  // namespace vmr::config
