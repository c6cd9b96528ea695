scenario_main() {
	O=$(disk origin)
	drop_caches; time cat $O >/dev/null
	drop_caches; time md5sum <$O
	drop_caches; time dd if=$O bs=1M status=none | md5sum
	time md5sum <$O
	drop_caches; time sha1sum <$O
	drop_caches; time crc32 <$O 2>&1 | tail -1
	drop_caches; time cksum <$O 2>&1 | tail -1
	dd if=$O of=/tmp/x bs=1M count=32 status=none
	time md5sum /tmp/x
	time sha1sum /tmp/x
}
