#include "output.h"

#include <simdjson.h>

#include <cstdio>

namespace vmr::ctl {

namespace {

// Render a scalar JSON value for people: strings bare, null as "-".
std::string scalar(simdjson::dom::element el)
{
    std::string_view sv;
    int64_t i = 0;
    uint64_t u = 0;
    double d = 0;
    bool b = false;
    switch (el.type()) {
        case simdjson::dom::element_type::STRING:
            if (el.get(sv) != simdjson::SUCCESS) return "?";
            return sv.empty() ? "-" : std::string(sv);
        case simdjson::dom::element_type::INT64:
            return el.get(i) == simdjson::SUCCESS ? std::to_string(i) : "?";
        case simdjson::dom::element_type::UINT64:
            return el.get(u) == simdjson::SUCCESS ? std::to_string(u) : "?";
        case simdjson::dom::element_type::DOUBLE:
            return el.get(d) == simdjson::SUCCESS ? std::to_string(d) : "?";
        case simdjson::dom::element_type::BOOL:
            return el.get(b) == simdjson::SUCCESS ? (b ? "yes" : "no") : "?";
        case simdjson::dom::element_type::NULL_VALUE: return "-";
        default: return simdjson::minify(el);
    }
}

std::string field(simdjson::dom::object obj, std::string_view key)
{
    simdjson::dom::element el;
    if (obj.at_key(key).get(el) != simdjson::SUCCESS) return "-";
    std::string s = scalar(el);
    return (s == "0" && (key == "pid" || key == "ssh_port")) ? "-" : s;
}

int unreadable()
{
    std::fprintf(stderr, "vmrctl: vmrd sent a result this vmrctl cannot show; try --json\n");
    return 1;
}

}  // namespace

std::string formatTable(const std::vector<std::vector<std::string>>& rows)
{
    std::vector<size_t> widths;
    for (const auto& r : rows) {
        if (widths.size() < r.size()) widths.resize(r.size(), 0);
        for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
    }
    std::string out;
    for (const auto& r : rows) {
        std::string line;
        for (size_t i = 0; i < r.size(); ++i) {
            line += r[i];
            if (i + 1 < r.size()) line.append(widths[i] - r[i].size() + 2, ' ');
        }
        out += line;
        out += '\n';
    }
    return out;
}

int printVersion(const std::string& resultJson)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (p.parse(resultJson).get(obj) != simdjson::SUCCESS) return unreadable();
    std::printf("vmrd %s (reactor: %s, api %s)\n", field(obj, "version").c_str(),
                field(obj, "reactor").c_str(), field(obj, "api").c_str());
    simdjson::dom::array features;
    if (obj.at_key("features").get(features) == simdjson::SUCCESS) {
        std::string list;
        for (auto f : features) {
            if (!list.empty()) list += ", ";
            list += scalar(f);
        }
        std::printf("features: %s\n", list.c_str());
    }
    return 0;
}

int printList(const std::string& resultJson, bool terminal)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    simdjson::dom::array vms;
    if (p.parse(resultJson).get(obj) != simdjson::SUCCESS ||
        obj.at_key("vms").get(vms) != simdjson::SUCCESS) {
        return unreadable();
    }
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"NAME", "BACKEND", "STATE", "VCPUS", "MEM", "NETWORK", "PID", "SSH"});
    std::string notes;  // why each broken VM is broken
    for (auto v : vms) {
        simdjson::dom::object vm;
        if (v.get(vm) != simdjson::SUCCESS) return unreadable();
        if (field(vm, "state") == "broken")
            notes += field(vm, "name") + " is broken: " + field(vm, "state_reason") + " (vmrctl destroy " +
                     field(vm, "name") + " removes it)\n";
        std::string mem = field(vm, "memory_mib");
        if (mem != "-") mem += "M";
        rows.push_back({field(vm, "name"), field(vm, "backend"), field(vm, "state"), field(vm, "vcpus"), mem,
                        field(vm, "network"), field(vm, "pid"), field(vm, "ssh_port")});
    }
    if (rows.size() == 1 && terminal) {
        std::printf("No VMs.\n");
        return 0;
    }
    std::fputs(formatTable(rows).c_str(), stdout);
    std::fputs(notes.c_str(), stdout);
    return 0;
}

int printStatus(const std::string& resultJson)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (p.parse(resultJson).get(obj) != simdjson::SUCCESS) return unreadable();
    std::vector<std::vector<std::string>> rows;
    for (auto [key, value] : obj) {
        if (key == "version") continue;
        std::string k(key);
        rows.push_back({k + ":", scalar(value)});
    }
    std::fputs(formatTable(rows).c_str(), stdout);
    return 0;
}

int printTemplates(const std::string& resultJson)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (p.parse(resultJson).get(obj) != simdjson::SUCCESS) return unreadable();
    simdjson::dom::array list;
    if (obj["templates"].get_array().get(list) != simdjson::SUCCESS) return unreadable();
    std::vector<std::vector<std::string>> rows = {{"NAME", "IMAGE", "VCPUS", "MEM", "PATH"}};
    for (simdjson::dom::element t : list) {
        simdjson::dom::object o, params;
        if (t.get_object().get(o) != simdjson::SUCCESS ||
            o["params"].get_object().get(params) != simdjson::SUCCESS)
            return unreadable();
        std::string image = field(params, "image");
        if (image == "-") image = field(params, "image_url");
        rows.push_back(
            {field(o, "name"), image, field(params, "vcpus"), field(params, "memory_mib"), field(o, "path")});
    }
    if (rows.size() == 1) {
        std::printf("No templates in %s (write NAME.toml there; see docs/templates.md).\n",
                    field(obj, "dir").c_str());
        return 0;
    }
    std::fputs(formatTable(rows).c_str(), stdout);
    return 0;
}

std::string describeEvent(const std::string& paramsJson)
{
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (p.parse(paramsJson).get(obj) != simdjson::SUCCESS) return paramsJson;
    std::string out = field(obj, "time") + "  " + field(obj, "topic");
    std::string vm = field(obj, "vm");
    if (vm != "-") out += "  " + vm;
    for (auto [key, value] : obj) {
        if (key == "time" || key == "topic" || key == "vm") continue;
        out += "  ";
        out += key;
        out += '=';
        out += scalar(value);
    }
    return out;
}

}  // namespace vmr::ctl
