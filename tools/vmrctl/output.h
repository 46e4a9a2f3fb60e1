#pragma once

// Human-readable output of vmrctl. With --json, results are printed verbatim instead.

#include <string>
#include <string_view>
#include <vector>

namespace vmr::ctl {

int printVersion(const std::string& resultJson);
int printList(const std::string& resultJson, bool terminal);
int printStatus(const std::string& resultJson);
// template.list: NAME IMAGE VCPUS MEM PATH
int printTemplates(const std::string& resultJson);
std::string describeEvent(const std::string& paramsJson);

// Left-aligned columns separated by two spaces (like vmctl's list).
std::string formatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace vmr::ctl
