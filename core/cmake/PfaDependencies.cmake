# Finds pfa's dependencies. Works with Debian 12's packages (CMake 3.25) and with CMake 4 plus
# PyTorch's own LibTorch on machines that carry the Debian packages unpacked elsewhere.

find_package(Threads REQUIRED)
find_package(dlpack REQUIRED)
find_package(TBB REQUIRED)
# Prefer the shared SQLite library: where only the -dev package is unpacked beside a system's
# runtime library (the GPU machines), a plain search would pick the non-PIC static archive, which
# cannot go into libpfa_store.so.
if(NOT SQLite3_LIBRARY)
  find_library(PFA_SQLITE_SHARED NAMES libsqlite3.so.0)
  if(PFA_SQLITE_SHARED)
    set(SQLite3_LIBRARY ${PFA_SQLITE_SHARED} CACHE FILEPATH "SQLite library")
  endif()
endif()
find_package(SQLite3 REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 QUIET)

# Boost.DLL is header-only once it uses std::filesystem; ask for no compiled component.
if(POLICY CMP0167)
  cmake_policy(SET CMP0167 NEW)
endif()
find_package(Boost REQUIRED CONFIG)
add_library(pfa_boost_dll INTERFACE)
target_link_libraries(pfa_boost_dll INTERFACE Boost::headers ${CMAKE_DL_LIBS})
target_compile_definitions(pfa_boost_dll INTERFACE BOOST_DLL_USE_STD_FS)

# CMake 3.25 names the SQLite target SQLite::SQLite3, CMake 4 prefers SQLite3::SQLite3.
add_library(pfa_sqlite INTERFACE)
if(TARGET SQLite3::SQLite3)
  target_link_libraries(pfa_sqlite INTERFACE SQLite3::SQLite3)
else()
  target_link_libraries(pfa_sqlite INTERFACE SQLite::SQLite3)
endif()

# XGBoost's packaged CMake config names a CLI binary of another package: find the C API by hand.
find_path(PFA_XGBOOST_INCLUDE_DIR xgboost/c_api.h REQUIRED)
find_library(PFA_XGBOOST_LIBRARY xgboost REQUIRED)
add_library(pfa_xgboost INTERFACE)
target_include_directories(pfa_xgboost SYSTEM INTERFACE ${PFA_XGBOOST_INCLUDE_DIR})
target_link_libraries(pfa_xgboost INTERFACE ${PFA_XGBOOST_LIBRARY})

# LibTorch: optional, only for the torch_sdpa plugin, the at::Tensor header's test and the bench.
set(PFA_HAVE_TORCH OFF)
if(NOT PFA_WITH_TORCH STREQUAL "OFF")
  if(PFA_WITH_TORCH STREQUAL "ON")
    find_package(Torch REQUIRED)
  else()
    find_package(Torch QUIET)
  endif()
  if(Torch_FOUND)
    set(PFA_HAVE_TORCH ON)
  endif()
endif()

# CUDA: optional. nvcc lives in /usr/local/cuda/bin, which is not on PATH here.
set(PFA_HAVE_CUDA OFF)
if(NOT PFA_WITH_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90a 80)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(PFA_HAVE_CUDA ON)
  elseif(PFA_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "PFA_WITH_CUDA=ON but no CUDA compiler was found")
  endif()
endif()

find_package(GTest QUIET)
