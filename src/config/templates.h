#pragma once

// VM templates (docs/templates.md): named TOML files in vmrd's config folder,
// `templates/NAME.toml`, with the fields of a VMFile `vm` block. `vmrctl create --template
// NAME [--name X]` makes a VM from one; the request's own fields win over the template's.

#include "base/result.h"

#include <string>
#include <string_view>
#include <vector>

namespace vmr::config {

struct Template {
    std::string name;
    std::string path;
    // The vm.create params the template gives (a JSON object without "name"), with paths
    // absolute and the files it names (ssh-key, user-data) read.
    std::string paramsJson;
};

// The templates folder of a vmrd whose config file is `configPath`: <its folder>/templates.
std::string templatesDir(const std::string& configPath);

// One template: `dir`/NAME.toml. NotFound (with the names there are) when there is none;
// Config errors name the file, line and key.
Result<Template> loadTemplate(const std::string& dir, std::string_view name);

// Every template in `dir` (none when the folder does not exist), sorted by name. A template
// that does not load is an error naming it.
Result<std::vector<Template>> loadTemplates(const std::string& dir);

// `request` (a JSON object) over `templ` (a JSON object): the request's keys win.
Result<std::string> mergeParams(std::string_view templ, std::string_view request);

}  // namespace vmr::config
