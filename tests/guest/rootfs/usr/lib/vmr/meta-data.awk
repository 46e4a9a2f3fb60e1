# Prints local-hostname from a NoCloud meta-data file, YAML ("local-hostname: NAME")
# or JSON ("{"local-hostname": "NAME", ...}"), quoted or not.
{ sub(/\r$/, "") }
match($0, /(^|[ \t{,])["']?local-hostname["']?[ \t]*:[ \t]*/) {
	v = substr($0, RSTART + RLENGTH)
	if (v ~ /^"/) {
		v = substr(v, 2)
		sub(/".*/, "", v)
	} else if (v ~ /^'/) {
		v = substr(v, 2)
		sub(/'.*/, "", v)
	} else {
		sub(/[ \t,}#].*/, "", v)
	}
	print v
	exit
}
