#pragma once

// What must hold of a vmrd's state after any crash (docs/state.md, "Crash consistency"), as a
// list of violations: the crash-point and chaos tests call it after every restart.

#include "harness.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace vmr::test {

struct ListedVm {
    std::string state;
    std::string pid;  // "" when none
};

// vm.list's result by name; nullopt when vmrd did not answer.
inline std::optional<std::map<std::string, ListedVm>> listVms(const Daemon& d)
{
    auto r = d.ctl({"--json", "list"});
    if (r.code != 0) return std::nullopt;
    std::map<std::string, ListedVm> out;
    const std::string key = "{\"name\":\"";
    for (size_t at = r.out.find(key); at != std::string::npos; at = r.out.find(key, at + 1)) {
        std::string vm = r.out.substr(at, r.out.find('}', at) - at);
        std::string name = vm.substr(key.size(), vm.find('"', key.size()) - key.size());
        auto value = [&](const std::string& k) -> std::string {
            auto p = vm.find("\"" + k + "\":");
            if (p == std::string::npos) return "";
            p += k.size() + 3;
            std::string v = vm.substr(p, vm.find_first_of(",}", p) - p);
            if (!v.empty() && v.front() == '"') v = v.substr(1, v.size() - 2);
            return v == "null" ? "" : v;
        };
        out[name] = {value("state"), value("pid")};
    }
    return out;
}

// Every invariant, after a restart on `dir`'s state: nothing half done left (no dot folder), no
// folder without its VM or VM without its folder, record and overlay present, nothing broken,
// and the processes using the folder exactly the hypervisors of VMs that have one, each alive.
inline std::vector<std::string> auditState(const Daemon& d, const TempDir& dir)
{
    std::vector<std::string> bad;
    const std::string vms = d.stateDir() + "/vms";
    for (const auto& f : listDir(vms))
        if (f.front() == '.') bad.push_back("left behind: " + vms + "/" + f);
    auto vmsListed = listVms(d);
    if (!vmsListed) return {"vmrd does not answer vm.list"};
    std::vector<std::string> names;
    std::vector<pid_t> hypervisors;
    for (const auto& [name, vm] : *vmsListed) {
        names.push_back(name);
        if (vm.state == "broken") bad.push_back("VM " + name + " is broken");
        for (const char* f : {"vm.json", "overlay.qcow2"})
            if (!std::filesystem::exists(vms + "/" + name + "/" + f))
                bad.push_back("VM " + name + " has no " + f);
        if (!vm.pid.empty()) {
            hypervisors.push_back(static_cast<pid_t>(std::stol(vm.pid)));
            if (::kill(hypervisors.back(), 0) != 0)
                bad.push_back("VM " + name + " is " + vm.state + " with a dead pid");
        } else if (vm.state == "running" || vm.state == "paused") {
            bad.push_back("VM " + name + " is " + vm.state + " without a pid");
        }
    }
    if (listDir(vms) != names) bad.push_back("the VM folders are not the VMs listed");
    std::sort(hypervisors.begin(), hypervisors.end());
    std::vector<pid_t> using_;
    bool settled = eventually(
        [&] {
            using_ = processesUsing(dir.path());
            using_.erase(std::remove(using_.begin(), using_.end(), d.pid()), using_.end());
            std::sort(using_.begin(), using_.end());
            return using_ == hypervisors;
        },
        5s);
    if (!settled)
        bad.push_back(std::to_string(using_.size()) + " processes use the state, " +
                      std::to_string(hypervisors.size()) + " hypervisors are known");
    return bad;
}

}  // namespace vmr::test
