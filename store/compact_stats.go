package store

import (
	bolt "go.etcd.io/bbolt"
)

// BucketSpace is how much of the file one bucket takes.
type BucketSpace struct {
	Keys      int
	Pages     int   // leaf and branch pages, overflow included
	InUse     int64 // bytes of those pages holding data
	Allocated int64 // bytes of those pages
}

// SpaceUsage reports, per bucket, the pages it holds; with the file size
// it tells where the bytes of a large ledger go (the sizing guide's
// per-event and per-contact figures).
func (s *Store) SpaceUsage() (map[string]BucketSpace, error) {
	out := map[string]BucketSpace{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			st := b.Stats()
			out[string(name)] = BucketSpace{Keys: st.KeyN, Pages: st.LeafPageN + st.LeafOverflowN + st.BranchPageN + st.BranchOverflowN,
				InUse: int64(st.LeafInuse + st.BranchInuse), Allocated: int64(st.LeafAlloc + st.BranchAlloc)}
			return nil
		})
	})
	return out, err
}
