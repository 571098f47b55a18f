# CMake package configuration for fieldauth (installed by ffi/pkg/install.sh
# into <prefix>/lib/cmake/fieldauth/). Relocatable: paths are computed from
# this file's location.
#
#   find_package(fieldauth 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE fieldauth::fieldauth)   # static (default)
#   target_link_libraries(app PRIVATE fieldauth::shared)      # libfieldauth.so, if installed
#
# Imported targets: fieldauth::static, fieldauth::shared (if the shared
# library is installed) and fieldauth::fieldauth (= fieldauth::static).
# Variables: fieldauth_INCLUDE_DIR, fieldauth_STATIC_LIBRARY,
# fieldauth_SHARED_LIBRARY.

get_filename_component(_fieldauth_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

set(fieldauth_INCLUDE_DIR "${_fieldauth_prefix}/include")
set(fieldauth_STATIC_LIBRARY "${_fieldauth_prefix}/lib/libfieldauth.a")
set(fieldauth_SHARED_LIBRARY "${_fieldauth_prefix}/lib/libfieldauth.so")

if(NOT EXISTS "${fieldauth_INCLUDE_DIR}/fieldauth.h" OR NOT EXISTS "${fieldauth_STATIC_LIBRARY}")
  set(fieldauth_FOUND FALSE)
  set(fieldauth_NOT_FOUND_MESSAGE
      "fieldauth: ${fieldauth_INCLUDE_DIR}/fieldauth.h or ${fieldauth_STATIC_LIBRARY} is missing")
  return()
endif()

if(NOT TARGET fieldauth::static)
  add_library(fieldauth::static STATIC IMPORTED)
  set_target_properties(fieldauth::static PROPERTIES
    IMPORTED_LOCATION "${fieldauth_STATIC_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${fieldauth_INCLUDE_DIR}"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C")
endif()

if(EXISTS "${fieldauth_SHARED_LIBRARY}" AND NOT TARGET fieldauth::shared)
  add_library(fieldauth::shared SHARED IMPORTED)
  set_target_properties(fieldauth::shared PROPERTIES
    IMPORTED_LOCATION "${fieldauth_SHARED_LIBRARY}"
    IMPORTED_SONAME "libfieldauth.so"
    INTERFACE_INCLUDE_DIRECTORIES "${fieldauth_INCLUDE_DIR}")
endif()

if(NOT TARGET fieldauth::fieldauth)
  add_library(fieldauth::fieldauth INTERFACE IMPORTED)
  set_target_properties(fieldauth::fieldauth PROPERTIES
    INTERFACE_LINK_LIBRARIES fieldauth::static)
endif()

set(fieldauth_FOUND TRUE)
unset(_fieldauth_prefix)
