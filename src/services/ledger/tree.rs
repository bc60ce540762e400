//! RFC 6962 Merkle tree arithmetic, without storage. The log stores only perfect subtrees (a
//! node covering 2^level leaves from an aligned index); every root, audit path and consistency
//! proof is a list of ranges of leaves, and each range's hash is its perfect subtrees folded
//! from the right, which is exactly RFC 6962's MTH of that range. Cross-checked against
//! `ct-merkle`'s in-memory tree in the tests.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// Leaf ids are `index`, level-k ids `(k << 48) | index`: one integer a node.
const LEVEL_SHIFT: u32 = 48;

/// MTH({d}) = SHA-256(0x00 || d).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A perfect subtree: 2^level leaves from `index << level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subtree {
    pub level: u32,
    pub index: u64,
}

impl Subtree {
    pub fn id(self) -> i64 {
        ((i64::from(self.level)) << LEVEL_SHIFT) | i64::try_from(self.index).unwrap_or(i64::MAX)
    }

    /// Whether `id` is a leaf's (level 0): leaves are the ids below 2^48.
    pub const FIRST_INNER_ID: i64 = 1 << LEVEL_SHIFT;
}

/// The perfect subtrees of leaves `[start, end)`, left to right, each as large as its
/// alignment allows. For the ranges RFC 6962's recursion produces, that is its own split.
pub fn decompose(start: u64, end: u64) -> Vec<Subtree> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let mut level = 63 - (end - at).leading_zeros();
        if at != 0 {
            level = level.min(at.trailing_zeros());
        }
        out.push(Subtree {
            level,
            index: at >> level,
        });
        at += 1 << level;
    }
    out
}

/// A range's hash from its perfect subtrees' hashes, left to right (MTH: folded from the right).
pub fn fold(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, left| node_hash(left, &acc)))
}

/// The largest power of two below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The ranges whose hashes are leaf `index`'s audit path in a tree of `size`, leaf to root
/// (RFC 6962 §2.1.1, PATH).
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    fn path(m: u64, a: u64, b: u64, out: &mut Vec<(u64, u64)>) {
        if b - a <= 1 {
            return;
        }
        let k = split(b - a);
        if m < a + k {
            path(m, a, a + k, out);
            out.push((a + k, b));
        } else {
            path(m, a + k, b, out);
            out.push((a, a + k));
        }
    }
    let mut out = Vec::new();
    if index < size {
        path(index, 0, size, &mut out);
    }
    out
}

/// The ranges whose hashes prove a tree of `old` leaves a prefix of one of `new` (RFC 6962
/// §2.1.2, PROOF(m, D[n])). Empty when there is nothing to prove.
pub fn consistency_ranges(old: u64, new: u64) -> Vec<(u64, u64)> {
    fn subproof(m: u64, a: u64, b: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
        if m == b {
            if !whole {
                out.push((a, b));
            }
            return;
        }
        let k = split(b - a);
        if m <= a + k {
            subproof(m, a, a + k, whole, out);
            out.push((a + k, b));
        } else {
            subproof(m, a + k, b, false, out);
            out.push((a, a + k));
        }
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(old, 0, new, true, &mut out);
    }
    out
}

/// The right edge of a growing tree: its perfect subtrees, left to right. Pushing a leaf
/// merges equal neighbours, so it holds at most one subtree a level.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    nodes: Vec<(Subtree, Hash)>,
    size: u64,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves, from its `decompose(0, size)` hashes.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        let shape = decompose(0, size);
        (shape.len() == hashes.len()).then(|| Self {
            nodes: shape.into_iter().zip(hashes).collect(),
            size,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf's hash; returns every subtree it completed (the leaf first).
    pub fn push(&mut self, leaf: Hash) -> Vec<(Subtree, Hash)> {
        let mut made = vec![(
            Subtree {
                level: 0,
                index: self.size,
            },
            leaf,
        )];
        self.nodes.push(made[0]);
        while let [.., (left, lh), (right, rh)] = self.nodes.as_slice() {
            if left.level != right.level {
                break;
            }
            let parent = (
                Subtree {
                    level: left.level + 1,
                    index: left.index >> 1,
                },
                node_hash(lh, rh),
            );
            self.nodes.truncate(self.nodes.len() - 2);
            self.nodes.push(parent);
            made.push(parent);
        }
        self.size += 1;
        made
    }

    pub fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.nodes.iter().map(|(_, h)| *h).collect();
        fold(&hashes).unwrap_or_else(empty_root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_merkle::{ConsistencyProof, InclusionProof, RootHash, mem_backed_tree::MemoryBackedTree};
    use proptest::prelude::*;

    type Sha = sha2_ct::Sha256;

    fn leaves(n: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("{{\"seq\":{}}}", i + 1).into_bytes())
            .collect()
    }

    /// Every perfect subtree's hash, as the log would store it.
    fn stored(leaves: &[Vec<u8>]) -> std::collections::HashMap<Subtree, Hash> {
        let mut f = Frontier::default();
        leaves.iter().flat_map(|l| f.push(leaf_hash(l))).collect()
    }

    fn range_hash(nodes: &std::collections::HashMap<Subtree, Hash>, (a, b): (u64, u64)) -> Hash {
        let hashes: Vec<Hash> = decompose(a, b).iter().map(|s| nodes[s]).collect();
        fold(&hashes).unwrap()
    }

    fn reference(leaves: &[Vec<u8>]) -> MemoryBackedTree<Sha, Vec<u8>> {
        let mut t = MemoryBackedTree::new();
        for l in leaves {
            t.push(l.clone());
        }
        t
    }

    #[test]
    fn the_empty_tree_and_one_leaf_are_rfc_6962s() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut f = Frontier::default();
        f.push(leaf_hash(b""));
        // RFC 6962's test vector: MTH of one empty leaf.
        assert_eq!(
            hex::encode(f.root()),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    proptest! {
        #[test]
        fn roots_and_proofs_match_ct_merkle(size in 1u64..70, pick in any::<u64>(), old_pick in any::<u64>()) {
            let leaves = leaves(size);
            let tree = reference(&leaves);
            let nodes = stored(&leaves);
            let hashes: Vec<Hash> = decompose(0, size).iter().map(|s| nodes[s]).collect();
            let frontier = Frontier::from_parts(size, hashes).unwrap();
            let expected: Vec<u8> = tree.root().as_bytes().to_vec();
            prop_assert_eq!(frontier.root().to_vec(), expected);

            let index = pick % size;
            let path: Vec<u8> = inclusion_ranges(index, size)
                .into_iter()
                .flat_map(|r| range_hash(&nodes, r))
                .collect();
            let expected = tree.prove_inclusion(usize::try_from(index).unwrap()).as_bytes().to_vec();
            prop_assert_eq!(&path, &expected);
            let proof = InclusionProof::<Sha>::try_from_bytes(path).unwrap();
            prop_assert!(tree.root().verify_inclusion(&leaves[usize::try_from(index).unwrap()], index, &proof).is_ok());

            let old = 1 + old_pick % size;
            let consistency: Vec<u8> = consistency_ranges(old, size)
                .into_iter()
                .flat_map(|r| range_hash(&nodes, r))
                .collect();
            let old_tree = reference(&leaves[..usize::try_from(old).unwrap()]);
            let proof = ConsistencyProof::<Sha>::try_from_bytes(consistency).unwrap();
            prop_assert!(tree.root().verify_consistency(&old_tree.root(), &proof).is_ok());
            let old_root = RootHash::<Sha>::new(*old_tree.root().as_bytes(), old);
            prop_assert!(tree.root().verify_consistency(&old_root, &proof).is_ok());
        }
    }

    #[test]
    fn a_rewritten_leaf_breaks_consistency_with_the_old_root() {
        let honest = leaves(9);
        let old_root = reference(&honest[..5]).root();
        let mut forged = honest.clone();
        forged[2] = b"{\"seq\":3,\"forged\":true}".to_vec();
        let nodes = stored(&forged);
        let proof: Vec<u8> = consistency_ranges(5, 9)
            .into_iter()
            .flat_map(|r| range_hash(&nodes, r))
            .collect();
        let proof = ConsistencyProof::<Sha>::try_from_bytes(proof).unwrap();
        assert!(
            reference(&forged)
                .root()
                .verify_consistency(&old_root, &proof)
                .is_err()
        );
    }
}
