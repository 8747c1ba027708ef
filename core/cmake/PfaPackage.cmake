# The installed CMake package: find_package(pfa) gives
#   pfa::pfa         the engine library (embedding); links dlpack headers, nothing private
#   pfa::plugin_sdk  the plugin ABI header and DLPack, header-only: what a backend vendor builds against
#   pfa::store       the SQLite execution store (recording executions)
#   pfa::learner     the learned router and cost model (a shared library; XGBoost, nlohmann-json and
#                    fmt are private to it, so an application needs none of them)
# Every path in the exported files is relative to the install prefix, so the prefix can move.
include(CMakePackageConfigHelpers)

set(PFA_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/pfa)

# Installed names: pfa::pfa, pfa::plugin_sdk, pfa::store, pfa::learner. Plugins (pfa_add_plugin)
# and the programs (cli/) install themselves into the same lib and bin folders.
set_target_properties(pfa_abi PROPERTIES EXPORT_NAME plugin_sdk)
set_target_properties(pfa_store PROPERTIES EXPORT_NAME store)
set_target_properties(pfa_learner PROPERTIES EXPORT_NAME learner)
install(TARGETS pfa pfa_abi pfa_store pfa_learner
  EXPORT pfaTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Public headers only: core/src and plugins/common stay private.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/core/include/pfa ${PROJECT_SOURCE_DIR}/store/include/pfa
                  ${PROJECT_SOURCE_DIR}/learner/include/pfa
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

install(EXPORT pfaTargets
  NAMESPACE pfa::
  FILE pfaTargets.cmake
  DESTINATION ${PFA_CMAKE_INSTALL_DIR})

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/pfaConfig.cmake.in
  ${CMAKE_BINARY_DIR}/pfaConfig.cmake
  INSTALL_DESTINATION ${PFA_CMAKE_INSTALL_DIR}
  PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR)

# The ABI major version follows the package major: a plugin or app built against 1.x keeps working
# with any later 1.y.
write_basic_package_version_file(
  ${CMAKE_BINARY_DIR}/pfaConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)

install(FILES ${CMAKE_BINARY_DIR}/pfaConfig.cmake ${CMAKE_BINARY_DIR}/pfaConfigVersion.cmake
  DESTINATION ${PFA_CMAKE_INSTALL_DIR})
