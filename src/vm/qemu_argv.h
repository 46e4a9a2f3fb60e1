#pragma once

// QEMU's command line for a VM, built as an argv (never a shell line) by a pure function, so
// every flag is tested as an exact string. docs/vm.md lists what each part is for.
//
// QEMU opens no path of vmrd's or of a client's (docs/security.md): every file and socket is a
// descriptor vmrd opened and hands over. Disks and firmware images are fdsets (-add-fd,
// /dev/fdset/N) under -blockdev nodes whose drivers are given, never probed; the overlay's
// backing image is its own node, so the backing file name recorded in the overlay is never
// followed. Kernel, initrd and -bios files are read by QEMU through /proc/self/fd/N.

#include "model/spec.h"
#include "vm/launch.h"

#include <string>
#include <utility>
#include <vector>

namespace vmr::vm {

// The descriptors QEMU starts with besides 0-2: made by the driver at each spawn.
constexpr int kQmpChildFd = 3;         // the QMP socket, listening
constexpr int kSerialChildFd = 4;      // the serial console's socket, listening
constexpr int kConsoleLogChildFd = 5;  // the console log, open for appending
constexpr int kFirstFileChildFd = 6;   // then the launch files, in the order the argv names them

struct QemuCommand {
    std::vector<std::string> argv;           // argv[0] = binary
    std::vector<std::pair<int, int>> files;  // {vmrd's descriptor, QEMU's}: the launch files
};

// The full command. Launch files must be opened (LaunchFile::opened()); one that is not is left
// out of the command.
QemuCommand buildQemuCommand(const std::string& binary, const model::VmSpec& spec, const Launch& launch);

}  // namespace vmr::vm
