/// A binary min-heap: the embedded lease queue's index for "what comes next" (the head of a
/// line, the earliest due lease or TTL), so that neither `claim` nor `sweep` scans every message.
///
/// Entries are never removed from the middle: a message that changes (claimed, extended,
/// canceled) gets a new entry with a new version and its old ones go stale. The owner skips
/// stale entries as they surface and calls `compact(keeping:)` when they pile up, which keeps
/// memory proportional to the live messages.
struct LeaseQueueHeap<Element: Comparable> {
    private(set) var elements: [Element] = []

    var count: Int { elements.count }
    var isEmpty: Bool { elements.isEmpty }
    /// The smallest element, without removing it.
    var min: Element? { elements.first }

    mutating func push(_ element: Element) {
        elements.append(element)
        siftUp(elements.count - 1)
    }

    /// Removes and returns the smallest element.
    @discardableResult
    mutating func popMin() -> Element? {
        guard let last = elements.popLast() else { return nil }
        guard !elements.isEmpty else { return last }
        let top = elements[0]
        elements[0] = last
        siftDown(0)
        return top
    }

    /// Drops every element `keep` refuses and restores the heap order in O(n).
    mutating func compact(keeping keep: (Element) -> Bool) {
        elements.removeAll { !keep($0) }
        var i = elements.count / 2 - 1
        while i >= 0 {
            siftDown(i)
            i -= 1
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard elements[child] < elements[parent] else { return }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let n = elements.count
        while true {
            let left = 2 * parent + 1
            guard left < n else { return }
            var smallest = left
            let right = left + 1
            if right < n && elements[right] < elements[left] { smallest = right }
            guard elements[smallest] < elements[parent] else { return }
            elements.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
