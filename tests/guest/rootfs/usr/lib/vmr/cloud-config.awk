# Reads a NoCloud user-data file ("#cloud-config" YAML) and prints what the vmr test
# guest applies, one record per line, fields separated by "|":
#   hostname|NAME        top-level hostname:
#   fqdn|NAME            top-level fqdn:
#   disable_root|VALUE   top-level disable_root: (true/false as written)
#   key|USER|KEY         an ssh_authorized_keys entry; USER is empty for the top-level
#                        list (the default user), else the name of its users: entry
#   user|NAME            a users: entry with a name:
#   hostkey|LINE         one line of ssh_keys: ed25519_private: | (an OpenSSH key)
#   error|TEXT           the file is not #cloud-config
# This is deliberately a small subset of YAML: block mappings and lists by indentation,
# "- item" and "[a, b]" lists, quoted or plain scalars, and "|" literal blocks.
function indent(s) { match(s, /^ */); return RLENGTH }
function unq(v) {
	sub(/^[ \t]+/, "", v)
	sub(/[ \t]+$/, "", v)
	if (v ~ /^".*"$/ || v ~ /^'.*'$/)
		v = substr(v, 2, length(v) - 2)
	return v
}
# "[a, b]" flow list of keys
function flow(v, user,   n, a, i, k) {
	sub(/^[ \t]*\[/, "", v)
	sub(/\][ \t]*$/, "", v)
	n = split(v, a, ",")
	for (i = 1; i <= n; i++) {
		k = unq(a[i])
		if (k != "")
			addkey(user, k)
	}
}
function addkey(user, k) {
	if (user == "\001") {
		ukeys[++nukeys] = k
	} else {
		print "key|" user "|" k
	}
}
# end of one users: entry: its keys are printed once its name is known
function flushuser(   i) {
	if (initem) {
		if (uname != "")
			print "user|" uname
		for (i = 1; i <= nukeys; i++)
			print "key|" uname "|" ukeys[i]
	}
	initem = 0
	uname = ""
	nukeys = 0
	inkeys = 0
}
# one "key: value" of a users: entry
function userfield(s,   k, v) {
	if (!match(s, /^[A-Za-z0-9_-]+:/)) {
		# a plain list item such as "- default": the default user, nothing to add
		inkeys = 0
		return
	}
	k = substr(s, 1, RLENGTH - 1)
	v = unq(substr(s, RLENGTH + 1))
	inkeys = 0
	if (k == "name") {
		uname = v
	} else if (k == "ssh_authorized_keys" || k == "ssh-authorized-keys") {
		if (v ~ /^\[/)
			flow(v, "\001")
		else
			inkeys = 1
	}
}
BEGIN { itemind = -1 }
{ sub(/\r$/, "") }
NR == 1 {
	if ($0 !~ /^#cloud-config[ \t]*$/) {
		print "error|user-data does not start with #cloud-config"
		exit 0
	}
	next
}
{
	line = $0
	if (inblock) {
		if (line ~ /^[ \t]*$/)
			next
		ind = indent(line)
		if (ind > blockind) {
			if (blockdedent < 0)
				blockdedent = ind
			print "hostkey|" substr(line, blockdedent + 1)
			next
		}
		inblock = 0
	}
	if (line ~ /^[ \t]*(#.*)?$/)
		next
	ind = indent(line)
	body = substr(line, ind + 1)
	if (ind == 0 && body !~ /^-/) {
		flushuser()
		section = ""
		if (match(body, /^[A-Za-z0-9_-]+:/)) {
			k = substr(body, 1, RLENGTH - 1)
			v = unq(substr(body, RLENGTH + 1))
			if ((k == "hostname" || k == "fqdn" || k == "disable_root") && v != "")
				print k "|" v
			else if (k == "ssh_authorized_keys" || k == "ssh-authorized-keys") {
				section = "keys"
				if (v ~ /^\[/)
					flow(v, "")
			} else if (k == "users") {
				section = "users"
				itemind = -1
			} else if (k == "ssh_keys")
				section = "ssh_keys"
		}
		next
	}
	if (section == "keys") {
		if (body ~ /^-[ \t]/)
			addkey("", unq(substr(body, 2)))
		next
	}
	if (section == "ssh_keys") {
		if (match(body, /^ed25519_private:/)) {
			v = unq(substr(body, RLENGTH + 1))
			if (v ~ /^\|/) {
				inblock = 1
				blockind = ind
				blockdedent = -1
			}
		}
		next
	}
	if (section == "users") {
		if (body ~ /^-([ \t]|$)/ && (itemind < 0 || ind <= itemind)) {
			flushuser()
			itemind = ind
			initem = 1
			rest = substr(body, 2)
			sub(/^[ \t]+/, "", rest)
			if (rest != "")
				userfield(rest)
			next
		}
		if (!initem)
			next
		if (inkeys && body ~ /^-[ \t]/) {
			addkey("\001", unq(substr(body, 2)))
			next
		}
		userfield(body)
	}
}
END { flushuser() }
