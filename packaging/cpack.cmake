# The Debian package: `cpack -G DEB` in the build directory (or `cmake --build . --target package`)
# makes sctptund_<version>_<arch>.deb. packaging/test-package.sh builds and checks it (ctest -L
# package).
#
# Contents (the layout is Debian's: the unit names /usr/sbin/sctptund, so the package's prefix is
# /usr whatever CMAKE_INSTALL_PREFIX is):
#   /usr/sbin/sctptund                             (the install() rule in CMakeLists.txt)
#   /usr/share/man/man8/sctptund.8, man5/sctptund.toml.5
#   /lib/systemd/system/sctptund@.service          one instance per /etc/sctptund/NAME.toml
#   /usr/share/doc/sctptund/examples/              example.toml (every key), site-a/b.toml
#   /etc/sctptund/                                 mode 0700, empty: configurations and keys
# Depends: computed from the binary's shared libraries by dpkg-shlibdeps (package dpkg-dev).
# Maintainer scripts (packaging/deb/): systemctl daemon-reload; restart of the running instances
# after an upgrade; stop before removal.

include(GNUInstallDirs)

install(FILES ${CMAKE_CURRENT_LIST_DIR}/sctptund@.service DESTINATION /lib/systemd/system
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/examples/example.toml
              ${CMAKE_CURRENT_LIST_DIR}/examples/site-a.toml
              ${CMAKE_CURRENT_LIST_DIR}/examples/site-b.toml
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/sctptund/examples
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# An empty directory (install(DIRECTORY) of an empty source directory), mode 0700 like the
# key files it will hold.
set(sctptund_empty_dir ${CMAKE_CURRENT_BINARY_DIR}/packaging-empty/sctptund)
file(MAKE_DIRECTORY ${sctptund_empty_dir})
install(DIRECTORY ${sctptund_empty_dir} DESTINATION /etc
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sctptund)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "TUN gateway that tunnels IP packets between sites over SCTP")
set(CPACK_PACKAGE_DESCRIPTION
    "sctptund runs on the gateway of each site: the far site's subnets are routed into its TUN
interface, it matches each packet against a policy (tunnel, bypass or drop by destination
prefix, protocol and ports), pins each flow to a stream of an SCTP association with the peer
gateway, and the far gateway writes the packets into its own TUN interface. SCTP runs in user
space (usrsctp, encapsulated in UDP) or in the kernel; every association is authenticated with a
pre-shared key and every message encrypted. A systemd unit template, sctptund@.service, runs one
instance per configuration file in /etc/sctptund.")
set(SCTPTUND_DEB_MAINTAINER "sctptund maintainers <sctptund@localhost>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT ${SCTPTUND_DEB_MAINTAINER})

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # sctptund_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${SCTPTUND_DEB_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_LIST_DIR}/deb/postinst
                                       ${CMAKE_CURRENT_LIST_DIR}/deb/prerm
                                       ${CMAKE_CURRENT_LIST_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
