import Foundation
import Purger
import Testing

@Suite struct BatchIDTests {
    @Test func describesItselfAsALowercaseUUID() {
        let id = BatchID(uuid: UUID(uuidString: "0F8E2F0C-3B7E-4C1E-9A53-1D1F0C2B7A11")!)
        #expect(id.description == "0f8e2f0c-3b7e-4c1e-9a53-1d1f0c2b7a11")
    }

    @Test func makesDistinctRandomIDs() {
        #expect(Set((0..<100).map { _ in BatchID() }).count == 100)
    }
}
