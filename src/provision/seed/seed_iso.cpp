#include "provision/seed/seed_iso.h"

#include "base/files.h"

// libisofs declares struct burn_source itself when libburn is not used.
#define LIBISOFS_WITHOUT_LIBBURN 1
#include <libisofs/libisofs.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace vmr::provision {

namespace {

Error isoError(const std::string& what, int code)
{
    return Error(ErrorKind::Internal,
                 what + ": " + iso_error_to_msg(code) + " (libisofs " + std::to_string(code) + ")");
}

Result<void> initLibisofs()
{
    static std::once_flag once;
    static int rc = 0;
    std::call_once(once, [] {
        rc = iso_init_with_flag(1);  // bit 0: leave the process's locale alone
        // Warnings and worse are returned to us as codes; nothing goes to stderr.
        char never[] = "NEVER";
        char prefix[] = "libisofs: ";
        if (rc >= 0) iso_set_msgs_severities(never, never, prefix);
    });
    if (rc < 0) return isoError("Cannot initialise libisofs", rc);
    return success();
}

struct ImageUnref {
    void operator()(IsoImage* i) const { iso_image_unref(i); }
};
struct OptsFree {
    void operator()(IsoWriteOpts* o) const { iso_write_opts_free(o); }
};
// libburn's burn_source_free() without libburn: drop the writer's data, then the struct.
struct BurnSourceFree {
    void operator()(burn_source* b) const
    {
        if (b->free_data) b->free_data(b);
        std::free(b);
    }
};

Result<void> addFile(IsoImage* image, const char* name, const std::string& content)
{
    // The stream takes the buffer and free()s it.
    auto* buf = static_cast<unsigned char*>(std::malloc(content.empty() ? 1 : content.size()));
    if (!buf) return Error(ErrorKind::Internal, "Out of memory for the seed's " + std::string(name));
    std::memcpy(buf, content.data(), content.size());
    IsoStream* stream = nullptr;
    int rc = iso_memory_stream_new(buf, content.size(), &stream);
    if (rc < 0) {
        std::free(buf);
        return isoError("Cannot add " + std::string(name) + " to the seed", rc);
    }
    IsoFile* file = nullptr;
    rc = iso_image_add_new_file(image, iso_image_get_root(image), name, stream, &file);
    if (rc < 0) {
        iso_stream_unref(stream);
        return isoError("Cannot add " + std::string(name) + " to the seed", rc);
    }
    auto* node = reinterpret_cast<IsoNode*>(file);
    iso_node_set_permissions(node, 0444);
    iso_node_set_uid(node, 0);
    iso_node_set_gid(node, 0);
    return success();
}

}  // namespace

Result<std::string> buildSeedIso(const SeedFiles& files)
{
    VMR_TRY(initLibisofs());
    IsoImage* raw = nullptr;
    int rc = iso_image_new(std::string(kSeedVolumeId).c_str(), &raw);
    if (rc < 0) return isoError("Cannot create the seed image", rc);
    std::unique_ptr<IsoImage, ImageUnref> image(raw);
    iso_image_set_application_id(image.get(), "VMR");
    iso_image_set_publisher_id(image.get(), "VMR");

    VMR_TRY(addFile(image.get(), "user-data", files.userData));
    VMR_TRY(addFile(image.get(), "meta-data", files.metaData));
    if (files.networkConfig) VMR_TRY(addFile(image.get(), "network-config", *files.networkConfig));

    IsoWriteOpts* rawOpts = nullptr;
    rc = iso_write_opts_new(&rawOpts, 0);
    if (rc < 0) return isoError("Cannot set up the seed image", rc);
    std::unique_ptr<IsoWriteOpts, OptsFree> opts(rawOpts);
    iso_write_opts_set_iso_level(opts.get(), 2);
    iso_write_opts_set_rockridge(opts.get(), 1);
    iso_write_opts_set_joliet(opts.get(), 1);
    iso_write_opts_set_always_gmt(opts.get(), 1);
    // Keep the label lower-case, "cidata", as genisoimage -volid writes it (strict
    // ISO 9660 d-characters would make it "CIDATA"; cloud-init accepts only those two).
    iso_write_opts_set_relaxed_vol_atts(opts.get(), 1);
    // Joliet names exactly as given ("user-data", not "user-data.;1"), as genisoimage
    // writes them (bit 1: Joliet only; the ISO 9660 names keep the standard's form).
    iso_write_opts_set_omit_version_numbers(opts.get(), 2);
    iso_write_opts_set_no_force_dots(opts.get(), 2);

    burn_source* rawSrc = nullptr;
    rc = iso_image_create_burn_source(image.get(), opts.get(), &rawSrc);
    if (rc < 0) return isoError("Cannot write the seed image", rc);
    std::unique_ptr<burn_source, BurnSourceFree> src(rawSrc);

    std::string out;
    unsigned char block[2048];
    for (;;) {
        int n = src->read_xt(src.get(), block, sizeof block);
        if (n < 0) {
            if (src->cancel) src->cancel(src.get());
            return Error(ErrorKind::Internal, "libisofs failed while writing the seed image");
        }
        if (n == 0) break;
        out.append(reinterpret_cast<const char*>(block), static_cast<size_t>(n));
    }
    return out;
}

Result<void> writeSeedIso(const std::string& path, const SeedFiles& files)
{
    auto iso = buildSeedIso(files);
    if (!iso) return std::move(iso).error();
    auto r = vmr::writeFileAtomic(path, *iso, 0600);
    if (!r) return Error(r.error().kind(), "Cannot write the seed ISO " + path).causedBy(r.error());
    return success();
}

}  // namespace vmr::provision
