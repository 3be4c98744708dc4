package store

// bucketImportRefs maps the keyed hash of an import row's ref to the seq
// of the event it produced, so a re-sent import appends nothing twice.
var bucketImportRefs = []byte("import_refs")

func init() { allBuckets = append(allBuckets, bucketImportRefs) }

// MarkImportRef records ref (already hashed by the caller: refs may hold
// personal data) as producing event seq. It reports false, and changes
// nothing, when ref was recorded before.
func (t *Tx) MarkImportRef(ref []byte, seq uint64) (bool, error) {
	b := t.bucket(bucketImportRefs)
	if b.Get(ref) != nil {
		return false, nil
	}
	return true, b.Put(ref, seqKey(seq))
}
