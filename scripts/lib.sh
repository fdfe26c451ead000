# shellcheck shell=bash
# Shared by the host scripts: dry runs, changes recorded with the command that
# undoes them, and the undo itself. The caller sets STATE (the record file)
# and DRY (1: only say).

die() {
	echo "$(basename "$0" .sh): $*" >&2
	exit 1
}

# change DESCRIPTION TAG UNDO... -- DO...: say DESCRIPTION, run DO (unless a
# dry run), and record UNDO under TAG once, so a later change of the same
# thing still undoes to the first value seen. Words must not hold spaces.
change() {
	local what=$1 tag=$2
	shift 2
	local undo=()
	while (($#)) && [ "$1" != -- ]; do
		undo+=("$1")
		shift
	done
	shift
	echo "$what"
	((DRY)) && return 0
	"$@"
	mkdir -p "$(dirname "$STATE")"
	grep -q "^$tag " "$STATE" 2>/dev/null || echo "$tag ${undo[*]}" >>"$STATE"
}

# put FILE VALUE: write a sysfs/procfs value unless it is already there.
put_value() {
	printf '%s\n' "$2" >"$1"
}
set_file() {
	local file=$1 want=$2 have
	have=$(cat "$file")
	[ "$have" = "$want" ] && return 0
	change "set $file $have -> $want" "file:$file" put_value "$file" "$have" -- put_value "$file" "$want"
}

# Undo every recorded change, newest first.
undo_all() {
	[ -f "$STATE" ] || {
		echo "nothing to undo ($STATE absent)"
		return 0
	}
	local tag cmd
	while read -r tag cmd; do
		echo "undo: $cmd"
		if ((DRY == 0)); then
			read -ra words <<<"$cmd"
			"${words[@]}" || echo "undo failed: $cmd ($tag)" >&2
		fi
	done < <(tac "$STATE")
	((DRY)) || rm -f "$STATE"
}

# state_digest: the record as it stands, to tell whether a run changed anything.
state_digest() {
	cat "$STATE" 2>/dev/null || true
}
