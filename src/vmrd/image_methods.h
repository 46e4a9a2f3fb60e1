#pragma once

// The image methods of the control socket, on top of image::Cache: image.pull, image.list,
// image.inspect and image.remove (docs/images.md). A pull's progress goes out as
// `image.progress` events, which the caller receives after events.subscribe.

#include "image/cache.h"
#include "rpc/server.h"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace vmr::vmrd {

struct ImageHooks {
    // Publish an event: the topic, and the event's own fields as JSON members without braces
    // (Daemon::publish with no VM).
    std::function<void(std::string_view topic, std::string_view fieldsJson)> publish;
    // The VMs whose overlay uses the image at `path` (image.remove refuses while there are any).
    std::function<std::vector<std::string>(const std::string& path)> usedBy;
};

// The cache is borrowed and must outlive the server's methods.
void registerImageMethods(rpc::Server& server, image::Cache& cache, ImageHooks hooks);

// {"path", then the members of <name>.json (image::toJson)}
std::string imageJson(const image::ImageEntry& e);

}  // namespace vmr::vmrd
