"""e2e_like with an action latency: during each step the world first applies the previous
action for LAT*dt, then the new one (the stack's video+OSC delay, roughly)."""
import sys, json
import numpy as np, torch
from pamiq_ros.sim import stepped
from pamiq_ros.sim.world import MotionCommand
LAT=float(sys.argv.pop(1))
orig_step=stepped.SimSteppedWorld.step
def cmd(action):
    m=action.motion
    return MotionCommand(forward=m.forward_mps,left=m.left_mps,yaw_rate=m.ccw_radps,jump=action.buttons.jump)
def step(self, action, dt):
    prev=getattr(self,'_prev',None)
    if prev is not None and LAT>0:
        self.world.step(dt*LAT, cmd(prev)); self.world.step(dt*(1-LAT), cmd(action))
    else:
        self.world.step(dt, cmd(action))
    self._prev=action
    return self._observe()
stepped.SimSteppedWorld.step=step
exec(open('/work/exp/e2e_like.py').read())
