package store

// bucketImportRefs maps the keyed hash of an import row's ref to the seq
// of the event it produced, so a re-sent import appends nothing twice.
var bucketImportRefs = []byte("import_refs")

func init() { allBuckets = append(allBuckets, bucketImportRefs) }

// HasImportRef reports whether ref (already hashed by the caller: refs may
// hold personal data) was recorded before. An import looks up a batch's
// refs in key order, then records the fresh ones in key order
// (PutImportRef): the hashes are random, and visiting them sorted walks
// the B-tree's pages in one pass instead of jumping about once per row.
func (t *Tx) HasImportRef(ref []byte) bool {
	return t.bucket(bucketImportRefs).Get(ref) != nil
}

// PutImportRef records ref (hashed) as producing event seq.
func (t *Tx) PutImportRef(ref []byte, seq uint64) error {
	return t.bucket(bucketImportRefs).Put(ref, seqKey(seq))
}
