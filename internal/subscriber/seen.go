package subscriber

import (
	"hash/maphash"
	"math/bits"
)

// seenSet remembers, for each address a CSV file has had, the line of its
// first row, in about 17 bytes per address: a 64-bit hash of its EmailKey
// and the line, in open-addressing tables. A map[[2]uint64]int32 took 54
// bytes per address at a million rows (its tables, filled alike by a
// uniform hash, all double at about the same row count), and as live heap
// it let the collector's target grow by as much again: it was most of
// the peak RSS of syncing a million readers.
//
// The set is split into seenShards shards, chosen by a second, independent
// hash, that grow on their own by a quarter: growing copies one shard,
// never the whole set, and the tables stay between 64% and 80% full. Two
// addresses are taken for one only when both hashes match, 72 bits in
// all: for a file of a million addresses, about one chance in ten billion.
type seenSet struct {
	seed, shardSeed maphash.Seed
	shards          [seenShards]seenShard
}

// seenShards is the number of shards of a seenSet (the second hash picks
// one with its low byte).
const seenShards = 256

// seenShard is one open-addressing table with linear probing; a hash of 0
// marks a free slot (a key whose hash is 0 is stored as 1).
type seenShard struct {
	hashes []uint64
	lines  []int32
	n      int
}

func newSeenSet() *seenSet {
	return &seenSet{seed: maphash.MakeSeed(), shardSeed: maphash.MakeSeed()}
}

// firstLine returns the line of the first row of key and true when key was
// seen before; otherwise it records line as key's first and returns false.
func (s *seenSet) firstLine(key string, line int) (int, bool) {
	h := maphash.String(s.seed, key)
	if h == 0 {
		h = 1
	}
	sh := &s.shards[uint8(maphash.String(s.shardSeed, key))]
	if (sh.n+1)*5 > len(sh.hashes)*4 {
		sh.grow()
	}
	i := sh.home(h)
	for {
		switch sh.hashes[i] {
		case 0:
			sh.hashes[i], sh.lines[i] = h, int32(line)
			sh.n++
			return 0, false
		case h:
			return int(sh.lines[i]), true
		}
		if i++; i == len(sh.hashes) {
			i = 0
		}
	}
}

// home is the slot where the probe for h starts (h scaled to the table's
// length, which need not be a power of two).
func (sh *seenShard) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(sh.hashes)))
	return int(hi)
}

// grow makes the table a quarter larger (16 slots at first) and moves the
// entries over.
func (sh *seenShard) grow() {
	size := len(sh.hashes) + len(sh.hashes)/4
	if size < 16 {
		size = 16
	}
	old, oldLines := sh.hashes, sh.lines
	sh.hashes, sh.lines = make([]uint64, size), make([]int32, size)
	for j, h := range old {
		if h == 0 {
			continue
		}
		i := sh.home(h)
		for sh.hashes[i] != 0 {
			if i++; i == size {
				i = 0
			}
		}
		sh.hashes[i], sh.lines[i] = h, oldLines[j]
	}
}
