// The FIFO of parked waiters every primitive keeps (locks, semaphores,
// limiters, events, memory object streams).
//
// The queue is intrusive: a node lives inside the awaitable that parked it,
// so waiting allocates nothing. Links are raw pointers: the awaitable holds a
// strong reference to its primitive and unlinks itself before it dies, so a
// linked node always outlives its place in the queue.
#pragma once

#include "common/py.hpp"

namespace anyio {

// `Node` has the members `Node* prev`, `Node* next` and `bool linked`
// (a bool-like type is fine), which only the queue touches.
template <class Node>
class WaitQueue {
 public:
  Node* front() const { return head_; }
  Node* back() const { return tail_; }
  bool empty() const { return head_ == nullptr; }
  Py_ssize_t size() const { return size_; }

  void push(Node* n) {
    n->prev = tail_;
    n->next = nullptr;
    if (tail_)
      tail_->next = n;
    else
      head_ = n;
    tail_ = n;
    n->linked = true;
    ++size_;
  }

  // Takes `n` out of the queue; a node that is not linked is left alone.
  void unlink(Node* n) {
    if (!n->linked) return;
    if (n->prev)
      n->prev->next = n->next;
    else
      head_ = n->next;
    if (n->next)
      n->next->prev = n->prev;
    else
      tail_ = n->prev;
    n->prev = n->next = nullptr;
    n->linked = false;
    --size_;
  }

  // Unlinks and returns the first node, or nullptr.
  Node* pop_front() {
    Node* n = head_;
    if (n) unlink(n);
    return n;
  }

 private:
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
  Py_ssize_t size_ = 0;
};

}  // namespace anyio
