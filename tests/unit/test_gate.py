import pytest

from harness.domain.gate import decide


@pytest.mark.parametrize("challenger,champion,promote,words", [
    (0.95, 0.90, True, "vs champion 0.9000"),          # better
    (0.80, 0.90, False, "worse than the champion's"),   # worse beyond tolerance
    (0.895, 0.90, True, "vs champion"),                 # within tolerance
    (0.89, 0.90, True, "vs champion"),                  # exactly at champion - tolerance
    (0.65, None, False, "below the floor 0.7000"),      # first model, below floor
    (0.75, None, True, "first model"),                  # first model
    (0.69, 0.60, False, "below the floor"),             # better than champion, still below floor
])
def test_gate(challenger, champion, promote, words):
    decision = decide(challenger, champion, metric="accuracy", tolerance=0.01, floor=0.7)
    assert decision.promote is promote
    assert words in decision.reason
