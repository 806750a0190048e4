import pytest

from pamiq_ros.core.actions import (
    ACTION_DIMENSIONS,
    ACTION_SIZES,
    ACTION_SPACES,
    RUN_SPEED_FACTOR,
    VRCHAT_ACTION_SIZES,
    ActionChoice,
    ActionMapper,
    Motion,
    MouseAction,
    Move,
    Strafe,
    Toggle,
    Turn,
    VRChatActionMapper,
    VRChatButtons,
    VRChatChoice,
    action_sizes,
)


def test_action_space_has_one_categorical_per_dimension_in_documented_order():
    assert [d.name for d in ACTION_DIMENSIONS] == ["move", "strafe", "turn", "jump", "run"]
    assert ACTION_SIZES == (3, 3, 3, 2, 2)
    assert ACTION_DIMENSIONS[0].options == ("stop", "forward", "backward")
    assert ACTION_DIMENSIONS[1].options == ("none", "left", "right")
    assert ACTION_DIMENSIONS[2].options == ("none", "left", "right")
    assert ACTION_DIMENSIONS[3].options == ("no", "yes")


@pytest.mark.parametrize(
    ("choice", "motion"),
    [
        (ActionChoice(), Motion(0.0, 0.0, 0.0)),
        (ActionChoice(move=Move.FORWARD), Motion(2.0, 0.0, 0.0)),
        (ActionChoice(move=Move.BACKWARD), Motion(-2.0, 0.0, 0.0)),
        (ActionChoice(strafe=Strafe.LEFT), Motion(0.0, 2.0, 0.0)),
        (ActionChoice(strafe=Strafe.RIGHT), Motion(0.0, -2.0, 0.0)),
        (ActionChoice(turn=Turn.LEFT), Motion(0.0, 0.0, 1.5)),
        (ActionChoice(turn=Turn.RIGHT), Motion(0.0, 0.0, -1.5)),
        (ActionChoice(Move.FORWARD, Strafe.RIGHT, Turn.LEFT), Motion(2.0, -2.0, 1.5)),
    ],
)
def test_choices_map_to_rep103_motion(choice, motion):
    action = ActionMapper(linear_speed=2.0, angular_speed=1.5).to_action(choice)
    assert action.motion == motion
    assert action.buttons == VRChatButtons(jump=False, run=False)


def test_run_presses_run_and_doubles_linear_speed_only():
    choice = ActionChoice(Move.FORWARD, Strafe.LEFT, Turn.RIGHT, Toggle.NO, Toggle.YES)
    action = ActionMapper(linear_speed=1.0, angular_speed=0.5).to_action(choice)
    assert action.motion == Motion(RUN_SPEED_FACTOR, RUN_SPEED_FACTOR, -0.5)
    assert action.buttons == VRChatButtons(jump=False, run=True)


def test_jump_is_a_button_and_does_not_move():
    action = ActionMapper().to_action(ActionChoice(jump=Toggle.YES))
    assert action.buttons == VRChatButtons(jump=True, run=False)
    assert action.motion == Motion()


def test_indices_round_trip_and_labels():
    choice = ActionChoice.from_indices([1, 1, 2, 1, 0])
    assert choice.indices() == (1, 1, 2, 1, 0)
    assert choice.label() == "forward+strafe_left+turn_right+jump"
    assert ActionChoice().label() == "stop"


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([3, 0, 0, 0, 0], "move=3 is out of range 0..2"),
        ([0, 0, 0, 2, 0], "jump=2 is out of range 0..1"),
        ([0, 0, -1, 0, 0], "turn=-1 is out of range"),
        ([0, 0, 0], "needs 5 indices"),
    ],
)
def test_invalid_indices_are_refused_with_the_dimension_named(indices, message):
    with pytest.raises(ValueError, match=message):
        ActionChoice.from_indices(indices)


def test_speeds_must_be_positive():
    with pytest.raises(ValueError, match="linear_speed"):
        ActionMapper(linear_speed=0.0)
    with pytest.raises(ValueError, match="angular_speed"):
        ActionMapper(angular_speed=-1.0)


def test_the_vrchat_space_has_pamiq_vrchats_nine_heads_and_maps_to_body_and_mouse():
    assert VRCHAT_ACTION_SIZES == (3, 3, 2, 2, 3, 3, 2, 2, 2)
    assert len(ACTION_SPACES["vrchat"]) == 9 and len(ACTION_SPACES["motion"]) == 5
    mapper = VRChatActionMapper(mouse_speed=100.0)
    body, mouse = mapper.to_actions([1, 0, 0, 1, 1, 2, 1, 0, 1])
    assert body.motion.forward_mps == 4.0 and body.motion.ccw_radps == 0.0 and body.buttons.run
    assert mouse == MouseAction(velocity_x=100.0, velocity_y=-100.0, left=True, middle=True)
    idle_body, idle_mouse = mapper.to_actions([0] * 9)
    assert idle_mouse == MouseAction() and idle_body.motion.forward_mps == 0.0
    with pytest.raises(ValueError, match="9 indices"):
        mapper.to_actions([0] * 5)
    with pytest.raises(ValueError, match="look_y=3"):
        mapper.to_actions([0, 0, 0, 0, 0, 3, 0, 0, 0])


def test_a_vrchat_choice_names_its_heads_and_its_osc_part_maps_without_a_turn():
    assert action_sizes("motion") == ACTION_SIZES and action_sizes("vrchat") == VRCHAT_ACTION_SIZES
    with pytest.raises(ValueError, match="action_space must be one of"):
        action_sizes("joystick")
    choice = VRChatChoice.from_indices([1, 2, 0, 1, 2, 1, 1, 0, 0])
    assert choice.indices() == (1, 2, 0, 1, 2, 1, 1, 0, 0)
    assert choice.label() == "forward+strafe_right+run+look_left+look_down+click_left"
    assert VRChatChoice().label() == "stop"
    assert choice.body() == ActionChoice(
        Move.FORWARD, Strafe.RIGHT, Turn.NONE, Toggle.NO, Toggle.YES
    )
    assert ActionMapper().to_action(choice) == VRChatActionMapper().to_actions(choice)[0]
    with pytest.raises(ValueError, match="middle_button=2"):
        VRChatChoice(middle_button=2)
    with pytest.raises(TypeError, match="look_x must be an int"):
        VRChatChoice(look_x=True)
