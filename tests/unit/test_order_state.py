"""The order state machine's one transition table: the paths the issue names, and the edges it must lack."""

import unittest

from kis.gateway.order_state import TERMINAL, TRANSITIONS, InvalidTransition, S, next_state


class OrderStateTest(unittest.TestCase):
    def walk(self, *steps: tuple[str, int]) -> list[S]:
        state, seen = S.ACCEPTED, []
        for event, filled in steps:
            state = next_state(state, event, filled)
            seen.append(state)
        return seen

    def test_happy_path_with_partial_fills(self) -> None:
        self.assertEqual(self.walk(("submit_start", 0), ("submit_ack", 0), ("fill", 3), ("fully_filled", 10)),
                         [S.SUBMITTING, S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED])

    def test_fill_notice_before_the_submit_answer(self) -> None:
        # The notice moves SUBMITTING on; the late answer is no transition (the executor records only the
        # KIS order number then), so it cannot drag the order back to SUBMITTED.
        self.assertEqual(self.walk(("submit_start", 0), ("fill", 1)), [S.SUBMITTING, S.PARTIALLY_FILLED])
        with self.assertRaises(InvalidTransition):
            next_state(S.PARTIALLY_FILLED, "submit_ack", 1)

    def test_modify_and_cancel_around_a_working_order(self) -> None:
        self.assertEqual(self.walk(("submit_start", 0), ("submit_ack", 0), ("modify_request", 0), ("modify_done", 0),
                                   ("cancel_request", 0), ("cancel_done", 0)),
                         [S.SUBMITTING, S.SUBMITTED, S.MODIFY_PENDING, S.SUBMITTED, S.CANCEL_PENDING, S.CANCELLED])
        self.assertEqual(next_state(S.MODIFY_PENDING, "modify_failed", 2), S.PARTIALLY_FILLED)
        self.assertEqual(next_state(S.CANCEL_PENDING, "cancel_failed", 0), S.SUBMITTED)
        self.assertEqual(next_state(S.ACCEPTED, "cancel_request"), S.CANCELLED)  # never reached KIS

    def test_unknown_is_settled_only_by_what_kis_says(self) -> None:
        self.assertEqual(next_state(S.SUBMITTING, "submit_unknown"), S.UNKNOWN)
        for event, edges in TRANSITIONS.items():
            target = edges.get(S.UNKNOWN)
            # Never back into the queue or into a new submit: an unknown outcome is never resubmitted.
            self.assertNotIn(target, (S.ACCEPTED, S.SUBMITTING), event)
        self.assertEqual(next_state(S.UNKNOWN, "submit_ack", 0), S.SUBMITTED)  # reconciliation found it
        self.assertEqual(next_state(S.UNKNOWN, "submit_rejected"), S.REJECTED)  # KIS never had it
        self.assertEqual(next_state(S.SUBMITTING, "submit_not_processed"), S.ACCEPTED)  # KIS refused before acting
        with self.assertRaises(InvalidTransition):
            next_state(S.UNKNOWN, "submit_not_processed")

    def test_terminal_states_have_no_way_out(self) -> None:
        self.assertEqual(TERMINAL, {S.FILLED, S.CANCELLED, S.REJECTED})
        for state in TERMINAL:
            for event in TRANSITIONS:
                with self.assertRaises(InvalidTransition, msg=f"{event} from {state}"):
                    next_state(state, event, 1)

    def test_invalid_edges_raise(self) -> None:
        for state, event in ((S.ACCEPTED, "modify_request"), (S.ACCEPTED, "submit_ack"),
                             (S.SUBMITTING, "cancel_request"), (S.CANCEL_PENDING, "modify_request"),
                             (S.MODIFY_PENDING, "modify_request")):
            with self.assertRaises(InvalidTransition) as ctx:
                next_state(state, event)
            self.assertEqual((ctx.exception.state, ctx.exception.event), (state, event))
