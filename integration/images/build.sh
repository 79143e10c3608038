#!/usr/bin/env bash
# Builds, offline, the local images that dind-executor's integration tests and
# demo use, and reuses them when they are already up to date. No container
# registry is contacted: the base image is debootstrapped from the Debian mirror
# apt already uses, everything else is built FROM it (legacy builder, no pull).
#
#   dind-executor.local/base:trixie   Debian trixie minbase + docker, git, busybox...
#   dind-executor.local/dind:test     docker:dind look-alike (dind/ in this folder)
#   dind-executor.local/dind-rootless:test  dind + rootlesskit, slirp4netns, uidmap
#                                     (dind-rootless/; its Debian packages are
#                                     downloaded by a throwaway container of dind)
#   dind-executor.local/job:test      tag of base
#   dind-executor.local/helper:test   base + a gitlab-runner test double (helper/)
#   dind-executor.local/buildkit:test buildkitd + buildctl (compiled from the Go
#                                     module proxy, buildkit/) + base's runc, for
#                                     buildx's docker-container driver
#
# Usage: build.sh [--force] [--check]
#   --force   rebuild every image even if it is up to date (or DIND_IMAGES_FORCE=1)
#   --check   build nothing; print each image's state, exit 3 if any is missing/stale
# Environment:
#   DIND_IMAGES_MIRROR   Debian mirror URL for debootstrap (default: the first
#                        .../debian URI in the apt sources, else deb.debian.org)
#   DIND_IMAGES_FORCE=1  same as --force
#   DIND_IMAGES_VERBOSE=1  stream build output to stderr instead of a log file
# Exit codes: 0 all images present and up to date; 1 a build failed (the log's
#   tail is printed); 2 usage error or missing prerequisite (docker daemon,
#   root + debootstrap when the base image must be built); 3 (--check) some
#   image is missing or stale; 130/143 interrupted by SIGINT/SIGTERM.
#
# Reuse: each image carries the label io.dind-executor.images.rev, a hash of the
# inputs that define it (base: suite, variant and package list in
# base/packages.txt; dind: base rev + every file under dind/; buildkit: base
# rev + every file under buildkit/, where the BuildKit version is pinned). An
# image whose label matches is reused; job is reused when it is the same image
# ID as base. See README.md.
set -euo pipefail
export LC_ALL=C

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
readonly REV_LABEL=io.dind-executor.images.rev
readonly BASE_IMAGE=dind-executor.local/base:trixie
readonly DIND_IMAGE=dind-executor.local/dind:test
readonly DIND_ROOTLESS_IMAGE=dind-executor.local/dind-rootless:test
# The packages dind-rootless adds (with their dependencies); part of its rev.
readonly DIND_ROOTLESS_PACKAGES="rootlesskit slirp4netns uidmap libcap2-bin"
readonly JOB_IMAGE=dind-executor.local/job:test
readonly HELPER_IMAGE=dind-executor.local/helper:test
readonly BUILDKIT_IMAGE=dind-executor.local/buildkit:test
readonly SUITE=trixie VARIANT=minbase
# Part of the base rev: bump the "v" when build_base changes in a way that
# should rebuild existing base images.
readonly BASE_RECIPE="base-v1 suite=$SUITE variant=$VARIANT"
# Part of the buildkit rev: bump when build_buildkit changes how the image is
# put together (the compile is defined by buildkit/compile.sh).
readonly BUILDKIT_RECIPE="buildkit-v1"
readonly DEFAULT_MIRROR=http://deb.debian.org/debian
readonly LOCK_FILE=/var/tmp/dind-executor-images.lock

# fd 4: the caller's stderr, for messages that must not end up in the build
# log (build steps run with stdout/stderr redirected to it).
exec 4>&2

usage() { sed -n '/^# Usage:/,/^#   image is missing/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
die() { echo "build.sh: $*" >&4; exit 2; }

force=${DIND_IMAGES_FORCE:-}
[[ $force == 0 ]] && force=
check_only=
while (($#)); do
	case $1 in
		--force) force=1 ;;
		--check) check_only=1 ;;
		-h | --help) usage; exit 0 ;;
		*) echo "build.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

command -v docker >/dev/null || die "docker CLI not found"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "cannot reach the docker daemon (docker version failed)"

# ---------------------------------------------------------------- helpers

sha() { sha256sum | cut -c1-16; }

# Non-comment, non-blank lines of base/packages.txt, trimmed.
package_list() { sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$HERE/base/packages.txt"; }

# Digest of every file below $1: relative path, executable bit and content.
files_digest() {
	(
		cd "$1"
		find . -type f ! -name '*~' ! -name '.*.swp' -print0 | sort -z |
			while IFS= read -r -d '' f; do
				x=-
				[[ -x $f ]] && x=x
				printf '%s %s %s\n' "$(sha256sum <"$f" | cut -c1-64)" "$x" "$f"
			done
	) | sha
}

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
image_rev() { docker image inspect --format "{{ index .Config.Labels \"$REV_LABEL\" }}" "$1" 2>/dev/null || true; }

# The mirror apt uses: first enabled "deb" URI ending in /debian, from
# sources.list (one-line format) and sources.list.d/*.list|*.sources (deb822).
apt_mirror() {
	if [[ -n ${DIND_IMAGES_MIRROR:-} ]]; then
		echo "$DIND_IMAGES_MIRROR"
		return
	fi
	local files=() f uri=
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] && files+=("$f")
	done
	if ((${#files[@]})); then
		uri=$(awk '
			function flush() {
				if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no") {
					n = split(uris, u, /[ \t]+/)
					for (k = 1; k <= n; k++) if (u[k] != "") print u[k]
				}
				types = ""; uris = ""; enabled = ""; key = ""
			}
			FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
			!deb822 {
				sub(/#.*/, "")
				if ($1 != "deb") next
				i = 2
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if (i <= NF) print $i
				next
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]/ { if (key == "uris") uris = uris " " $0; else if (key == "types") types = types " " $0; next }
			{
				key = tolower(substr($0, 1, index($0, ":") - 1)); val = substr($0, index($0, ":") + 1)
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "enabled") { enabled = tolower(val); gsub(/[ \t]/, "", enabled) }
			}
			END { flush() }
		' "${files[@]}" | grep -E '^https?://[^ ]*/debian/?$' | head -n1) || true
	fi
	echo "${uri:-$DEFAULT_MIRROR}"
}

# ---------------------------------------------------------------- cleanup

readonly WORK_PREFIX=/var/tmp/dind-executor-base.
readonly BK_PREFIX=/var/tmp/dind-executor-buildkit.
WORK=      # temp dir of a base build ($WORK_PREFIX*), removed on exit
CHILD=     # pid of a long-running build step (see run), stopped on INT/TERM
BK_DIR=    # temp dir of the buildkit build ($BK_PREFIX*), removed on exit
BK_PID=    # pid of the background BuildKit compile (its own process group)
LOG=       # build log (kept and shown on failure)
OLD_IDS=() # image IDs replaced by this run, removed (best effort) at the end

mounts_below() { awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r; }

# Unmount whatever is still mounted below $1 (debootstrap mounts proc and sys
# in the target; an interrupted run may leave them), deepest first, lazily if
# busy; then delete $1 without crossing into any other file system.
remove_workdir() {
	local dir=$1 m
	[[ -d $dir ]] || return 0
	while read -r m; do
		[[ -n $m ]] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
	done < <(mounts_below "$dir")
	if [[ -n $(mounts_below "$dir") ]]; then
		echo "build.sh: WARNING: mounts remain below $dir; not removing it" >&4
		return 0
	fi
	rm -rf --one-file-system "$dir"
}

# Run a long build step (a command, not a function) in its own process group,
# in the background, and wait for it: bash defers traps until a foreground
# child exits, this way INT/TERM are handled at once and stop the whole step
# (debootstrap, dpkg, maintainer scripts...) before cleanup.
run() {
	local rc=0
	setsid "$@" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=
	return "$rc"
}

on_signal() {
	stop_bk_compile
	if [[ -n $CHILD ]]; then
		echo "build.sh: interrupted; stopping the running build step" >&4
		kill -TERM -- "-$CHILD" 2>/dev/null || true
		wait "$CHILD" 2>/dev/null || true
		sleep 1
		kill -KILL -- "-$CHILD" 2>/dev/null || true
		CHILD=
	fi
	exit "$1"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_bk_compile
	[[ -n $WORK ]] && remove_workdir "$WORK"
	[[ -n $BK_DIR ]] && rm -rf --one-file-system "$BK_DIR"
	if [[ -n $LOG && -f $LOG ]]; then
		if ((rc != 0)); then
			echo "build.sh: build failed (exit $rc); last lines of $LOG:" >&4
			tail -n 40 "$LOG" >&4 || true
			echo "build.sh: full log kept at $LOG" >&4
		else
			rm -f "$LOG"
		fi
	fi
	# Our documented codes and signal exits pass through; anything else is a
	# failed build step (debootstrap, apt-get, docker build...).
	case $rc in 0 | 2 | 3 | 130 | 143) ;; *) rc=1 ;; esac
	exit "$rc"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# ---------------------------------------------------------------- builders

build_base() {
	local rev=$1 mirror rootfs pkgs in_chroot
	((EUID == 0)) || die "building $BASE_IMAGE needs root (debootstrap, chroot)"
	command -v debootstrap >/dev/null || die "building $BASE_IMAGE needs debootstrap (apt-get install debootstrap)"
	mapfile -t pkgs < <(package_list)
	mirror=$(apt_mirror)
	# Honour an apt proxy, if the host's apt is configured with one.
	if [[ -z ${http_proxy:-} ]] && command -v apt-config >/dev/null; then
		eval "$(apt-config shell http_proxy Acquire::http::Proxy)"
		[[ -n ${http_proxy:-} ]] && export http_proxy
	fi

	WORK=$(mktemp -d "${WORK_PREFIX}XXXXXXXX")
	rootfs=$WORK/rootfs
	echo "+ debootstrap --variant=$VARIANT $SUITE $rootfs $mirror"
	run debootstrap --variant="$VARIANT" "$SUITE" "$rootfs" "$mirror"

	rm -f "$rootfs/etc/resolv.conf"
	cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf"
	# Never start services (dockerd!) from maintainer scripts inside the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
	chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

	in_chroot=(chroot "$rootfs" /usr/bin/env -i
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		HOME=/root LC_ALL=C DEBIAN_FRONTEND=noninteractive)
	[[ -n ${http_proxy:-} ]] && in_chroot+=("http_proxy=$http_proxy")
	[[ -n ${https_proxy:-} ]] && in_chroot+=("https_proxy=$https_proxy")
	echo "+ apt-get install ${pkgs[*]}"
	run "${in_chroot[@]}" apt-get update
	run "${in_chroot[@]}" apt-get install -y --no-install-recommends "${pkgs[@]}"
	run "${in_chroot[@]}" apt-get clean

	rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/resolv.conf"
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
	[[ -z $(mounts_below "$rootfs") ]] || { echo "unexpected mounts below $rootfs:"; mounts_below "$rootfs"; return 1; }

	echo "+ docker import -> $BASE_IMAGE"
	tar --numeric-owner -C "$rootfs" -c . | docker import \
		--change "LABEL $REV_LABEL=$rev" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' \
		- "$BASE_IMAGE"

	remove_workdir "$WORK"
	WORK=
}

# The BuildKit compile runs in the background (its own process group) from
# before the base image is made until build_buildkit needs its binaries: it
# is the costly part of a cold run and needs neither base nor the network
# beyond the Go module proxy.
start_bk_compile() {
	BK_DIR=$(mktemp -d "${BK_PREFIX}XXXXXXXX")
	setsid bash "$HERE/buildkit/compile.sh" "$BK_DIR/bin" >"$BK_DIR/compile.log" 2>&1 </dev/null &
	BK_PID=$!
}

stop_bk_compile() {
	[[ -n $BK_PID ]] || return 0
	kill -TERM -- "-$BK_PID" 2>/dev/null || true
	wait "$BK_PID" 2>/dev/null || true
	BK_PID=
}

# dind-executor.local/buildkit:test: what buildx's docker-container driver
# needs in its image (it runs the image's entrypoint with buildkitd's flags,
# then execs `buildctl debug workers`, `buildctl dial-stdio` and `buildkitd
# --version` in it): the static buildkitd and buildctl, and Debian's runc
# (the OCI worker's runtime) with the libraries it links, copied out of base.
# Nothing else, so that a job can `docker load` it quickly (~80 MB).
build_buildkit() {
	local rev=$1 rc=0 rootfs
	if [[ -z $BK_PID ]]; then
		start_bk_compile
	fi
	echo "+ waiting for buildkit/compile.sh (background since the start of this run)"
	wait "$BK_PID" || rc=$?
	BK_PID=
	cat "$BK_DIR/compile.log"
	((rc == 0)) || { echo "buildkit/compile.sh failed (exit $rc)"; return 1; }

	rootfs=$BK_DIR/rootfs
	mkdir -p "$rootfs"/{usr/bin,etc/buildkit,var/lib/buildkit,run,tmp}
	chmod 1777 "$rootfs/tmp"
	cp "$BK_DIR"/bin/buildkitd "$BK_DIR"/bin/buildctl "$rootfs/usr/bin/"
	echo "+ runc and its libraries from $BASE_IMAGE"
	# shellcheck disable=SC2016 # expanded by the container's shell
	docker run --rm --network=none --entrypoint sh "$BASE_IMAGE" -c '
		set -e
		libs=$(ldd /usr/sbin/runc | grep -o "/[^ ]*")
		cd / && tar -chf - usr/sbin/runc etc/ld.so.cache $(for l in $libs; do echo "${l#/}"; done)
	' | tar -C "$rootfs" -xf -
	echo "+ docker import -> $BUILDKIT_IMAGE"
	tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . | docker import \
		--change "LABEL $REV_LABEL=$rev" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENTRYPOINT ["buildkitd"]' \
		- "$BUILDKIT_IMAGE"
	rm -rf --one-file-system "$BK_DIR"
	BK_DIR=
}

# dind-executor.local/dind-rootless:test: dind/ plus the packages of the
# rootless profile. The .debs are downloaded by a throwaway container of
# dind (the one step of this script with network in a container: Debian's
# mirror, as configured in base) into a temporary build context; the build
# itself has no network, like the others.
build_dind_rootless() {
	local rev=$1 ctx
	ctx=$(mktemp -d "${BK_PREFIX}rootless.XXXXXXXX")
	cp -a "$HERE/dind-rootless/." "$ctx/"
	mkdir -p "$ctx/debs"
	echo "+ apt-get install --download-only $DIND_ROOTLESS_PACKAGES"
	# shellcheck disable=SC2086 # a list of package names
	docker run --rm --user 0 --entrypoint sh -v "$ctx/debs:/out" "$DIND_IMAGE" -c '
		set -e
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --download-only "$@"
		cp /var/cache/apt/archives/*.deb /out/
	' sh $DIND_ROOTLESS_PACKAGES
	DOCKER_BUILDKIT=0 docker build --pull=false --network=none --force-rm \
		--label "$REV_LABEL=$rev" -t "$DIND_ROOTLESS_IMAGE" "$ctx"
	rm -rf --one-file-system "$ctx"
}

# build_dir IMAGE DIR REV: an image FROM base, defined by a folder here.
build_dir() {
	local image=$1 dir=$2 rev=$3
	# Legacy builder (no buildx/BuildKit needed), no pull, no network for RUN.
	DOCKER_BUILDKIT=0 docker build --pull=false --network=none --force-rm \
		--label "$REV_LABEL=$rev" -t "$image" "$dir"
}

# ---------------------------------------------------------------- main

LOCKED=
if [[ -z $check_only ]]; then
	# Serialise concurrent runs (parallel test packages): the loser waits,
	# then finds the images up to date.
	if [[ ! -e $LOCK_FILE ]]; then
		(umask 0; : >"$LOCK_FILE") 2>/dev/null || true
	fi
	if { exec 9<"$LOCK_FILE"; } 2>/dev/null; then
		if ! flock -n 9; then
			echo "build.sh: waiting for another build.sh run (lock $LOCK_FILE)" >&2
			flock -w 1800 9 || die "timed out waiting for $LOCK_FILE"
		fi
		LOCKED=1
	fi
fi

# Work dirs left by runs that were killed (SIGKILL, power loss). We hold the
# lock, and an orphaned build step would hold it too (it inherits the lock
# fd), so nobody is using them any more.
if [[ -n $LOCKED ]] && ((EUID == 0)); then
	for dir in "$WORK_PREFIX"* "$BK_PREFIX"*; do
		if [[ -d $dir ]]; then
			echo "build.sh: removing stale $dir" >&2
			remove_workdir "$dir" || true
		fi
	done
fi

base_rev=$({ echo "$BASE_RECIPE"; package_list; } | sha)
dind_rev=$({ echo "base=$base_rev"; files_digest "$HERE/dind"; } | sha)
dind_rootless_rev=$({ echo "dind=$dind_rev"; echo "packages=$DIND_ROOTLESS_PACKAGES"; files_digest "$HERE/dind-rootless"; } | sha)
helper_rev=$({ echo "base=$base_rev"; files_digest "$HERE/helper"; } | sha)
buildkit_rev=$({ echo "base=$base_rev"; echo "$BUILDKIT_RECIPE"; files_digest "$HERE/buildkit"; } | sha)

stale=0
# step NAME REV KIND: decide, build if needed, print one line.
step() {
	local name=$1 rev=$2 kind=$3 start old state
	start=$EPOCHREALTIME
	old=$(image_id "$name")
	case $kind in
		tag) [[ -n $old && $old == "$(image_id "$BASE_IMAGE")" ]] && state=reused || state=build ;;
		*) [[ -n $old && $(image_rev "$name") == "$rev" ]] && state=reused || state=build ;;
	esac
	[[ -n $force && $state == reused ]] && state=build
	if [[ -n $check_only ]]; then
		if [[ $state == reused ]]; then state=ok; elif [[ -z $old ]]; then state=missing; else state=stale; fi
		[[ $state == ok ]] || stale=1
		printf '%-34s %-8s rev=%s\n' "$name" "$state" "$rev"
		return
	fi
	if [[ $state == build ]]; then
		if [[ -z $LOG ]]; then
			LOG=$(mktemp /var/tmp/dind-executor-images.XXXXXXXX.log)
			if [[ -n ${DIND_IMAGES_VERBOSE:-} && ${DIND_IMAGES_VERBOSE} != 0 ]]; then
				exec 3>&2
			else
				exec 3>>"$LOG"
			fi
		fi
		case $kind in
			base) build_base "$rev" >&3 2>&3 ;;
			dind) build_dir "$DIND_IMAGE" "$HERE/dind" "$rev" >&3 2>&3 ;;
			dind-rootless) build_dind_rootless "$rev" >&3 2>&3 ;;
			helper) build_dir "$HELPER_IMAGE" "$HERE/helper" "$rev" >&3 2>&3 ;;
			buildkit) build_buildkit "$rev" >&3 2>&3 ;;
			tag) docker tag "$BASE_IMAGE" "$name" >&3 2>&3 ;;
		esac
		[[ -n $old && $old != "$(image_id "$name")" ]] && OLD_IDS+=("$old")
		state=built
	fi
	printf '%-34s %-7s %6.1fs  rev=%s\n' "$name" "$state" \
		"$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')" "$rev"
}

# Start the BuildKit compile now when its image is to be built, so that it
# overlaps the base build (mostly network and dpkg).
if [[ -z $check_only ]] && { [[ -n $force ]] || [[ $(image_rev "$BUILDKIT_IMAGE") != "$buildkit_rev" ]]; }; then
	start_bk_compile
fi
step "$BASE_IMAGE" "$base_rev" base
step "$DIND_IMAGE" "$dind_rev" dind
step "$DIND_ROOTLESS_IMAGE" "$dind_rootless_rev" dind-rootless
step "$JOB_IMAGE" "$base_rev" tag
step "$HELPER_IMAGE" "$helper_rev" helper
step "$BUILDKIT_IMAGE" "$buildkit_rev" buildkit

# Drop images this run replaced, if nothing uses them any more (no -f: an
# image still tagged, used by a container or by a child image stays). Two
# passes, since an old base can only go once the old dind built on it is gone.
for _ in 1 2; do
	for id in "${OLD_IDS[@]}"; do
		docker image rm "$id" >/dev/null 2>&1 || true
	done
done

if [[ -n $check_only ]] && ((stale)); then
	exit 3
fi
exit 0
