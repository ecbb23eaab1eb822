# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are read by the scripts that source this file.
# The test image busybox:1.36 built from Debian's busybox-static, for engines that cannot pull
# it. scripts/setup.sh imports it into dockerd, and tests/integration/podman_engine.sh into a
# private Podman store. Sourcing this file only defines what is below.
#
# NOTE: the content is Debian 12's busybox (1.35), tagged with the name that the embedded
# default template uses so that it runs without a registry.

busybox_image_name="busybox:1.36"

# The image configuration that `docker import` and `podman import` take as -c options.
busybox_image_changes=(
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    -c 'CMD ["sh"]'
)

# busybox_write_rootfs DIR: writes a minimal root file system into DIR: busybox with a symlink
# per applet, /tmp, and the accounts root and nobody (uid and gid 65534), which templates use
# as users.
busybox_write_rootfs() {
    local rootfs=$1 applet
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
    chmod 1777 "$rootfs/tmp"
    chmod 0700 "$rootfs/root"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $("$rootfs/bin/busybox" --list); do
        if [[ $applet != busybox ]]; then
            ln -s busybox "$rootfs/bin/$applet"
        fi
    done
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$rootfs/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$rootfs/etc/group"
}

# busybox_rootfs_tar DIR: writes the file system of DIR as a tar stream on stdout, owned by
# root.
busybox_rootfs_tar() {
    tar --numeric-owner --owner=0 --group=0 -C "$1" -cf - .
}
