#include "vm/firmware.h"

#include <sys/stat.h>
#include <unistd.h>

namespace vmr::vm {

namespace {

bool isReadableFile(const std::string& path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), R_OK) == 0;
}

}  // namespace

std::vector<OvmfPair> defaultOvmfLocations()
{
    // Debian 12's ovmf package: the 4 MiB build first (what its own docs recommend for q35).
    return {{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
            {"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
            {"/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"}};
}

Result<Firmware> resolveFirmware(const std::string& choice, const std::vector<OvmfPair>& ovmf)
{
    Firmware fw;
    if (choice.empty() || choice == "bios") return fw;
    if (choice == "uefi") {
        for (const OvmfPair& p : ovmf) {
            if (isReadableFile(p.code) && isReadableFile(p.vars)) {
                fw.uefiCode = p.code;
                fw.uefiVarsTemplate = p.vars;
                return fw;
            }
        }
        std::string looked;
        for (const OvmfPair& p : ovmf) looked += (looked.empty() ? "" : ", ") + p.code;
        return Error(ErrorKind::ToolMissing,
                     "UEFI firmware (OVMF) is not installed (looked for " + looked + ")",
                     "Install it (Debian: apt-get install ovmf), or leave --firmware out to boot with "
                     "QEMU's BIOS");
    }
    if (choice.find('/') == std::string::npos)
        return Error(ErrorKind::InvalidArgument, "Unknown firmware \"" + choice + "\"",
                     "Use \"bios\", \"uefi\", or the absolute path of a firmware file");
    if (!isReadableFile(choice))
        return Error(ErrorKind::NotFound, "Firmware file " + choice + " does not exist or cannot be read",
                     "Give the path of a readable firmware file, or use \"uefi\" for OVMF");
    fw.bios = choice;
    return fw;
}

}  // namespace vmr::vm
