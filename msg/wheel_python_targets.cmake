# Included after the find_package calls of an interface package (msg/, msg/tf2_msgs/).
# The pip-installed ROS wheels export Python-binding targets whose include directory is the
# Python of the machine that built the wheels. Point them at this machine's Python so the
# generate step works; with a ROS distribution the targets are already right.
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module)
get_property(imported_targets DIRECTORY PROPERTY IMPORTED_TARGETS)
foreach(target ${imported_targets})
  if(target MATCHES "__rosidl_generator_py$")
    get_target_property(include_dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
    if(include_dirs AND NOT EXISTS "${include_dirs}")
      set_target_properties(${target} PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${Python3_INCLUDE_DIRS}")
    endif()
  endif()
endforeach()
