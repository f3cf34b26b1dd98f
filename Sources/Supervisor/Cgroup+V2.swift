extension CgroupTree {
    /// Enables controllers for the children of `directory` (cgroup-v2.rst, "Enabling and
    /// Disabling"): one `+name` per write, so one the kernel refuses does not hide the others;
    /// a missing controller shows up later as the limit file being absent.
    static func enableControllers(_ controllers: Set<String>, in directory: String) throws(SystemCallError) {
        let enabled = Set(
            try FileIO.readText(directory + "/cgroup.subtree_control").split(whereSeparator: { $0 == " " || $0 == "\n" })
                .map(String.init))
        for controller in controllers.subtracting(enabled).sorted() {
            try? FileIO.write("+" + controller, to: directory + "/cgroup.subtree_control")
        }
    }
}

extension InstanceCgroup {
    /// `populated` of cgroup.events: 1 while any process is in the cgroup or below it.
    static func unifiedPopulated(_ directory: String) throws(SystemCallError) -> Bool {
        let events = try FileIO.readText(directory + "/cgroup.events")
        return FileIO.keyedValue("populated", in: events) != 0
    }
}
