# Cross-compiles Aviary for 64-bit Arm (aarch64) on an x86-64 Debian with
# multiarch arm64 packages (scripts/check-arm64.sh installs them and uses this):
#   cmake -S . -B build/arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Multiarch: arm64 libraries and their CMake/pkg-config files live under
# /usr/lib/aarch64-linux-gnu, headers under /usr/include.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
list(APPEND CMAKE_PREFIX_PATH /usr/lib/aarch64-linux-gnu/cmake)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Test discovery runs the binaries under qemu-user. "-L /": the multiarch
# loader and libc.so.6 (libc6:arm64) belong together; the cross toolchain's
# loader in /usr/aarch64-linux-gnu with the multiarch libc hangs in
# pthread_create (two glibc builds).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/)
